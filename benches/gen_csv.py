#!/usr/bin/env python3
"""Generate a deterministic standard-layout CSV for Liaison benchmarks.

    benches/gen_csv.py N OUT.csv [--seed S]

Writes N contact rows (plus a header) in the standard CSV layout of SPEC §2:
realistic Czech, Slovak, Polish, German and English names with diacritics, a few
Cyrillic and Greek ones, e-mails derived from the names and the account's domain,
~N/50 accounts, phones, flags, grants, free-text descriptions (some with commas,
quotes and the odd embedded newline, so RFC 4180 quoting is exercised) and one
custom attribute column, `attributes.licence_key`.

Properties the benchmark relies on:
- the same N and seed give byte-identical output (Python 3.11 stdlib only);
- `contact_id` is unique (`c-0000001`, …);
- e-mails are unique except for ~1 % of rows, which share an address (sometimes
  in another letter case) with an earlier row: the same person listed twice,
  which Liaison groups into one user with several contacts;
- e-mail domains use the reserved `.test` TLD;
- about 2 % of rows have `portal_access=false` and ~1 % carry an explicit,
  unique `login`; no row is malformed (a bad row would be a product bug);
- rows average ~125 bytes, so 1,000,000 rows ≈ 124 MB like the reference
  import in ../shared/testenv.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import unicodedata

COLUMNS = [
    "contact_id", "name", "email", "phone", "account_id", "account_name", "login",
    "description", "locale", "account_contacts", "account_tickets",
    "external_comments", "grants", "portal_access", "attributes.licence_key",
]

# Share of rows that reuse an earlier row's person (name + e-mail). Each such row
# pairs with another, so about twice this share of rows share an e-mail.
DUPLICATE_SHARE = 0.005
NO_ACCOUNT_SHARE = 0.08
NO_PORTAL_SHARE = 0.02
EXPLICIT_LOGIN_SHARE = 0.01
FLAG_EMPTY_SHARE = 0.45

# --- names ---------------------------------------------------------------------
# Per nationality: male first names, female first names, and surnames as
# (male form, female form) — Czech/Slovak/Polish surnames inflect for gender.
# Cyrillic and Greek entries carry their ASCII transliteration explicitly, the way
# a company directory would have spelt their e-mail addresses.

CS = (
    "Jiří Jan Petr Tomáš Lukáš Martin Jakub Ondřej Vojtěch Miroslav Zdeněk Radek "
    "Michal Václav Karel Josef František Přemysl Matěj Štěpán".split(),
    "Žofie Anna Tereza Eliška Lucie Kateřina Petra Markéta Jana Veronika Zuzana "
    "Hana Barbora Klára Věra Růžena Dagmar Šárka Lenka Michaela".split(),
    [
        ("Dvořák", "Dvořáková"), ("Novák", "Nováková"), ("Svoboda", "Svobodová"),
        ("Novotný", "Novotná"), ("Černý", "Černá"), ("Procházka", "Procházková"),
        ("Kučera", "Kučerová"), ("Veselý", "Veselá"), ("Horák", "Horáková"),
        ("Němec", "Němcová"), ("Pokorný", "Pokorná"), ("Marek", "Marková"),
        ("Pospíšil", "Pospíšilová"), ("Hájek", "Hájková"), ("Král", "Králová"),
        ("Růžička", "Růžičková"), ("Beneš", "Benešová"), ("Fiala", "Fialová"),
        ("Sedláček", "Sedláčková"), ("Doležal", "Doležalová"), ("Zeman", "Zemanová"),
        ("Kolář", "Kolářová"), ("Navrátil", "Navrátilová"), ("Čermák", "Čermáková"),
        ("Vaněk", "Vaňková"), ("Urban", "Urbanová"), ("Blažek", "Blažková"),
        ("Křížek", "Křížková"), ("Kovář", "Kovářová"), ("Šťastný", "Šťastná"),
        ("Bartoš", "Bartošová"), ("Vlček", "Vlčková"), ("Říha", "Říhová"),
        ("Ševčík", "Ševčíková"), ("Jelínek", "Jelínková"),
    ],
)
SK = (
    "Ľubomír Ján Peter Juraj Matúš Marek Štefan Dušan Ľudovít Milan Ľuboš Tibor".split(),
    "Ľubica Mária Zuzana Katarína Jana Alžbeta Dáša Lenka Monika Ivana Soňa Ľudmila".split(),
    [
        ("Horváth", "Horváthová"), ("Kováč", "Kováčová"), ("Varga", "Vargová"),
        ("Tóth", "Tóthová"), ("Nagy", "Nagyová"), ("Baláž", "Balážová"),
        ("Szabó", "Szabóová"), ("Molnár", "Molnárová"), ("Lukáč", "Lukáčová"),
        ("Hrušovský", "Hrušovská"), ("Kráľ", "Kráľová"), ("Šimko", "Šimková"),
        ("Ďurica", "Ďuricová"), ("Gašpar", "Gašparová"), ("Polák", "Poláková"),
        ("Čierny", "Čierna"), ("Mráz", "Mrázová"), ("Štefánik", "Štefániková"),
    ],
)
PL = (
    "Łukasz Paweł Krzysztof Piotr Tomasz Michał Grzegorz Wojciech Jędrzej Mateusz "
    "Bartłomiej Przemysław Zbigniew Jarosław Kacper".split(),
    "Agnieszka Małgorzata Katarzyna Joanna Żaneta Zofia Magdalena Ewa Dorota "
    "Aleksandra Grażyna Jolanta Bożena Urszula Weronika".split(),
    [
        ("Wójcik", "Wójcik"), ("Kowalski", "Kowalska"), ("Nowak", "Nowak"),
        ("Wiśniewski", "Wiśniewska"), ("Lewandowski", "Lewandowska"),
        ("Kamiński", "Kamińska"), ("Zieliński", "Zielińska"), ("Szymański", "Szymańska"),
        ("Woźniak", "Woźniak"), ("Dąbrowski", "Dąbrowska"), ("Kozłowski", "Kozłowska"),
        ("Jankowski", "Jankowska"), ("Mazur", "Mazur"), ("Krawczyk", "Krawczyk"),
        ("Piotrowski", "Piotrowska"), ("Grabowski", "Grabowska"),
        ("Pawłowski", "Pawłowska"), ("Michalski", "Michalska"), ("Król", "Król"),
        ("Wieczorek", "Wieczorek"), ("Jabłoński", "Jabłońska"),
        ("Ślusarczyk", "Ślusarczyk"), ("Żurawski", "Żurawska"), ("Głowacki", "Głowacka"),
    ],
)
DE = (
    "Jürgen Günter Jörg Stefan Andreas Matthias Klaus Uwe Björn Maximilian Jörn "
    "Lukas Felix Sören Hans-Peter".split(),
    "Sabine Ursula Bärbel Käthe Monika Ute Sophie Anja Gisela Heike Claudia Lena "
    "Jördis Anne-Marie Henriette".split(),
    [(s, s) for s in (
        "Groß Müller Schäfer Weiß Schröder Köhler Becker Hoffmann Schmidt Schneider "
        "Fischer Weber Meyer Wagner Krüger Böhm König Jäger Strauß Mößner Lübke "
        "Hölzl Bäumer Große-Wilde Fuß Eßer Näf".split() + ["von Bülow"]
    )],
)
EN = (
    "James John Robert Michael William David Richard Thomas Christopher Daniel "
    "Oliver Harry George Jack Noah".split(),
    "Mary Patricia Jennifer Linda Elizabeth Susan Jessica Sarah Karen Emily Olivia "
    "Amelia Isla Chloé Zoë".split(),
    [(s, s) for s in (
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Taylor Anderson Thomas "
        "Moore Jackson O'Brien O'Connor McDonald Evans Walker Wright Robinson Hughes "
        "Clarke Lewis-Jones".split()
    )],
)
# Cyrillic (Russian, Ukrainian, Bulgarian, Serbian) and Greek names: (name, ascii).
CYRILLIC = [
    ("Иван Петров", "ivan.petrov"), ("Сергей Иванов", "sergey.ivanov"),
    ("Ольга Смирнова", "olga.smirnova"), ("Наталья Кузнецова", "natalya.kuznetsova"),
    ("Дмитрий Соколов", "dmitriy.sokolov"), ("Олександр Шевченко", "oleksandr.shevchenko"),
    ("Юлія Коваленко", "yuliya.kovalenko"), ("Андрій Бондаренко", "andriy.bondarenko"),
    ("Георги Димитров", "georgi.dimitrov"), ("Милица Јовановић", "milica.jovanovic"),
    ("Анастасия Попова", "anastasiya.popova"), ("Богдан Ткаченко", "bohdan.tkachenko"),
]
GREEK = [
    ("Γιώργος Παπαδόπουλος", "giorgos.papadopoulos"), ("Νίκος Οικονόμου", "nikos.oikonomou"),
    ("Μαρία Παπαδοπούλου", "maria.papadopoulou"), ("Ελένη Γεωργίου", "eleni.georgiou"),
    ("Δημήτρης Νικολάου", "dimitris.nikolaou"), ("Κατερίνα Αθανασίου", "katerina.athanasiou"),
]

# nationality: (weight, name pools, locale choices, phone format, account suffixes)
NATIONS = {
    "cs": (30, CS, ("cs", "cs", "cs", "en", ""), "+420 6{b:02d} {c:03d} {d:03d}",
           ("s.r.o.", "s.r.o.", "a.s.", "spol. s r.o.", "v.o.s.")),
    "sk": (10, SK, ("cs", "en", ""), "+421 9{b:02d} {c:03d} {d:03d}",
           ("s.r.o.", "a.s.")),
    "pl": (20, PL, ("pl", "pl", "en", ""), "+48 5{b:02d} {c:03d} {d:03d}",
           ("Sp. z o.o.", "Sp. z o.o.", "S.A.", "sp.k.")),
    "de": (20, DE, ("de", "de", "en", ""), "+49 15{a} {c:03d}{d:04d}",
           ("GmbH", "GmbH", "AG", "GmbH & Co. KG", "KG")),
    "en": (17, EN, ("en", "en", ""), "+44 7{b:03d} {c:03d}{a}{a}{a}",
           ("Ltd", "Ltd", "Inc.", "LLC", "plc")),
    "cyr": (2, None, ("en", ""), "+7 9{b:02d} {c:03d}-{a}{a}-{a}{a}", ("LLC",)),
    "gr": (1, None, ("en", ""), "+30 69{a} {c:03d} {d:04d}", ("S.A.", "Ltd")),
}

COMPANY_WORDS = {
    "cs": ["Strojírny", "Stavby", "Elektro", "Dřevovýroba", "Pekárna", "Logistika",
           "Zámečnictví", "Účetnictví", "Software", "Obchod"],
    "sk": ["Stavebniny", "Drevo", "Elektro", "Potraviny", "Logistika", "Služby"],
    "pl": ["Budownictwo", "Transport", "Piekarnia", "Usługi", "Hurtownia", "Systemy"],
    "de": ["Maschinenbau", "Bäckerei", "Logistik", "Elektrotechnik", "Software",
           "Großhandel", "Brückenbau"],
    "en": ["Logistics", "Engineering", "Software", "Consulting", "Trading", "Systems"],
    "cyr": ["Trading", "Logistics"],
    "gr": ["Shipping", "Trading"],
}
BRANDS = ["ACME", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
          "Contoso", "Fabrikam", "Northwind", "Tailspin", "Oceanic", "Soylent"]

# Reserved TLD (RFC 2606): generated addresses can never reach a real mailbox.
FREEMAIL = ["seznam.test", "gmail.test", "wp.test", "web.test", "outlook.test",
            "centrum.test", "post.test", "mail.test"]

DESCRIPTIONS = [
    "Purchasing", "IT lead", "Field service", "Accounts payable", "Warehouse",
    "Project manager", "Support contact", "CEO", "Sales, CEE region",
    "Purchasing, Brno office", 'Key account "VIP"', 'Prefers e-mail, "no calls"',
    "Nákup a logistika", "Technická podpora, 2. linie", "Einkauf, Standort Köln",
    "Zakupy, oddział Kraków", 'Says "call before 10", then e-mail',
    "Partner since 2019; renewal due", "Ответственный за закупки", "Λογιστήριο",
]
MULTILINE_DESCRIPTION = "Night shift contact\nsecond line: ask for the supervisor"
GRANTS = ["support", "sales", "recordings", "billing", "queue:vip", "team-brno",
          "team-praha", "queue:cz-l2", "reports"]
FLAGS = ("true", "false")


def ascii_fold(text: str) -> str:
    """Latin text to ASCII the way people spell their e-mail addresses."""
    text = (text.replace("ß", "ss").replace("ł", "l").replace("Ł", "L")
            .replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
            .replace("Ä", "Ae").replace("Ö", "Oe").replace("Ü", "Ue"))
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def slug(text: str) -> str:
    out = []
    for c in ascii_fold(text).lower():
        if c.isascii() and c.isalnum():
            out.append(c)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


# E-mail local-part conventions; each account uses one of them.
EMAIL_STYLES = (
    lambda f, l: f"{f}.{l}",      # jiri.dvorak
    lambda f, l: f"{f[0]}.{l}",   # j.dvorak
    lambda f, l: f"{f[0]}{l}",    # jdvorak
    lambda f, l: f"{l}.{f}",      # dvorak.jiri
)


def ascii_word(text: str) -> str:
    return slug(text).replace("-", "")


def build_people(nation: str):
    """All (display name, ascii first name, ascii surname) of one nationality."""
    if nation in ("cyr", "gr"):
        return [(name, *ascii.split(".")) for name, ascii in
                (CYRILLIC if nation == "cyr" else GREEK)]
    males, females, surnames = NATIONS[nation][1]
    people = [(f"{f} {m}", ascii_word(f), ascii_word(m)) for f in males for m, _ in surnames]
    people += [(f"{f} {w}", ascii_word(f), ascii_word(w)) for f in females for _, w in surnames]
    return people


def build_accounts(rng: random.Random, count: int, nation_names, nation_weights):
    """Accounts as (id, name, domain, nationality, e-mail style)."""
    accounts = []
    domains: set[str] = set()
    for i in range(1, count + 1):
        nation = rng.choices(nation_names, nation_weights)[0]
        suffix = rng.choice(NATIONS[nation][4])
        r = rng.random()
        if nation in ("cyr", "gr"):
            base = rng.choice(BRANDS) + " " + rng.choice(COMPANY_WORDS[nation])
        elif r < 0.45:
            base = rng.choice(NATIONS[nation][1][2])[0]
        elif r < 0.65:
            base = rng.choice(BRANDS)
        elif r < 0.85:
            base = rng.choice(NATIONS[nation][1][2])[0] + " " + rng.choice(COMPANY_WORDS[nation])
        elif r < 0.95:
            a, b = rng.sample(NATIONS[nation][1][2], 2)
            base = f"{a[0]} & {b[0]}"
        else:
            # A comma in the company name: quoting in another column than description.
            a, b = rng.sample(NATIONS[nation][1][2], 2)
            base = f"{a[0]}, {b[0]} & Partners"
        name = f"{base} {suffix}"
        domain_base = slug(base)
        domain = f"{domain_base}.test"
        n = 2
        while domain in domains:
            domain = f"{domain_base}{n}.test"
            n += 1
        domains.add(domain)
        style = EMAIL_STYLES[rng.choices(range(len(EMAIL_STYLES)), (45, 25, 20, 10))[0]]
        accounts.append((f"acc-{i:05d}", name, domain, nation, style))
    return accounts


def generate(n: int, out, seed: int) -> None:
    rng = random.Random(seed)
    nation_names = list(NATIONS)
    nation_weights = [NATIONS[k][0] for k in nation_names]
    people = {k: build_people(k) for k in nation_names}
    accounts = build_accounts(rng, max(1, n // 50), nation_names, nation_weights)

    # Cumulative weights once, so the per-row choice is a single bisect.
    cum_nations = []
    total = 0
    for w in nation_weights:
        total += w
        cum_nations.append(total)

    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)

    random_ = rng.random
    randrange = rng.randrange
    choice = rng.choice
    used_emails: set[str] = set()
    recent: list[tuple[str, str]] = []  # ring of recent (name, email) for duplicates
    ring = 4096
    batch = []

    def flag(true_share: float) -> str:
        """An optional flag column: often left empty (the default), else true/false."""
        if random_() < FLAG_EMPTY_SHARE:
            return ""
        return FLAGS[random_() < true_share]

    def portal_access() -> str:
        """Mostly empty (present) or true; NO_PORTAL_SHARE of rows opt out."""
        r = random_()
        return "false" if r < NO_PORTAL_SHARE else "true" if r < 0.5 else ""

    for i in range(1, n + 1):
        account = None
        if random_() >= NO_ACCOUNT_SHARE:
            account = accounts[randrange(len(accounts))]
        if recent and random_() < DUPLICATE_SHARE:
            name, email = recent[randrange(len(recent))]
            if random_() < 0.3:
                email = email.upper()  # correlation is case-insensitive
            nation = "cs" if account is None else account[3]
        else:
            if account is not None and random_() < 0.75:
                nation = account[3]
            else:
                x = random_() * total
                nation = nation_names[next(j for j, c in enumerate(cum_nations) if x < c)]
            name, first, last = choice(people[nation])
            if account is not None:
                local, domain = account[4](first, last), account[2]
            else:
                local, domain = f"{first}.{last}", choice(FREEMAIL)
            email = f"{local}@{domain}"
            if email in used_emails:
                k = 2
                while f"{local}{k}@{domain}" in used_emails:
                    k += 1
                email = f"{local}{k}@{domain}"
            used_emails.add(email)
            if len(recent) < ring:
                recent.append((name, email))
            else:
                recent[i % ring] = (name, email)

        spec = NATIONS[nation]
        phone = ""
        if random_() < 0.5:
            phone = spec[3].format(a=randrange(1, 10), b=randrange(100), c=randrange(1000),
                                   d=randrange(10000) if "04d" in spec[3] else randrange(1000))
        r = random_()
        if r < 0.22:
            description = choice(DESCRIPTIONS)
        elif r < 0.221:
            description = MULTILINE_DESCRIPTION
        else:
            description = ""
        r = random_()
        if r < 0.45:
            grants = choice(GRANTS)
        elif r < 0.55:
            grants = "|".join(rng.sample(GRANTS, 2))
        else:
            grants = ""
        licence = ""
        if random_() < 0.3:
            licence = f"LIC-{randrange(16**4):04X}-{randrange(16**4):04X}"
        login = f"ext-{i:07d}" if random_() < EXPLICIT_LOGIN_SHARE else ""
        batch.append((
            f"c-{i:07d}", name, email, phone,
            account[0] if account else "", account[1] if account else "",
            login, description, choice(spec[2]),
            flag(0.6), flag(0.8), flag(0.5),
            grants, portal_access(), licence,
        ))
        if len(batch) >= 10000:
            writer.writerows(batch)
            batch.clear()
    writer.writerows(batch)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int, help="number of contact rows (N)")
    parser.add_argument("out", help="output CSV path ('-' for stdout)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("N must be at least 1")
    if args.out == "-":
        generate(args.rows, sys.stdout, args.seed)
        return 0
    # Write next to the target and rename, so an interrupted run never leaves a
    # truncated file that a later benchmark would reuse.
    tmp = f"{args.out}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            generate(args.rows, out, args.seed)
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
