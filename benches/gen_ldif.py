#!/usr/bin/env python3
"""Writes N inetOrgPerson entries under ou=people,dc=example,dc=com, and
groups under ou=groups listing them, as LDIF for slapadd (which gives each
entry its entryUUID, entryCSN and timestamps).

    benches/gen_ldif.py N OUT.ldif [--groups G] [--no-suffix]

The output depends only on the arguments: the same N gives the same file.
Every fifth person is employeeType=employee, the rest partner; person i
belongs to company i % 97 (its `o`) and to group team-(i % G). With
--no-suffix the suffix, ou=people and ou=groups are left out (the test
harness makes them).
"""

import argparse
import base64
import sys

SUFFIX = "dc=example,dc=com"
PEOPLE = "ou=people," + SUFFIX
GROUPS = "ou=groups," + SUFFIX

GIVEN = ["Jiří", "Anna", "Łukasz", "Eva", "Petr", "Marie", "Tomáš", "Lucie", "Jan", "Zuzana",
         "Ondřej", "Tereza", "Martin", "Kateřina", "Pavel", "Veronika", "Jakub", "Barbora"]
FAMILY = ["Dvořák", "Novák", "Svoboda", "Černý", "Procházka", "Kučera", "Veselý", "Horák",
          "Němec", "Marek", "Pokorný", "Král", "Jelínek", "Růžička", "Beneš", "Fiala", "Sedláček"]
COMPANY_WORDS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
                 "Tyrell", "Cyberdyne", "Soylent", "Wonka", "Gringotts", "Monarch", "Oscorp"]


def company(k):
    a = COMPANY_WORDS[k % len(COMPANY_WORDS)]
    b = COMPANY_WORDS[(k * 7 + 3) % len(COMPANY_WORDS)]
    return f"{a} {b} {k:02d}"


def ascii_fold(text):
    table = str.maketrans("řžščěýáíéůúňťďŘŽŠČĚÝÁÍÉŮÚŇŤĎŁł", "rzsceyaieuuntdRZSCEYAIEUUNTDLl")
    return text.translate(table)


def attr(name, value):
    """One LDIF line: values outside printable ASCII in base64 (RFC 2849)."""
    if value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<")):
        return f"{name}: {value}\n"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}\n"


def write(out, n, groups, suffix):
    if suffix:
        out.write(f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
                  f"o: Example\ndc: example\n\n")
        out.write(f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n")
        out.write(f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n\n")
    for i in range(1, n + 1):
        given = GIVEN[i % len(GIVEN)]
        family = FAMILY[(i // len(GIVEN)) % len(FAMILY)]
        uid = f"user{i:06d}"
        mail = ascii_fold(f"{given}.{family}.{i}").lower() + f"@c{i % 97:02d}.example"
        kind = "employee" if i % 5 == 0 else "partner"
        out.write(
            f"dn: uid={uid},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            + attr("cn", f"{given} {family}") + attr("sn", family) + attr("givenName", given)
            + f"mail: {mail}\no: {company(i % 97)}\nemployeeType: {kind}\n"
            f"telephoneNumber: +420 {600000000 + i}\n\n"
        )
    for g in range(groups if n else 0):
        out.write(f"dn: cn=team-{g:02d},{GROUPS}\nobjectClass: groupOfNames\ncn: team-{g:02d}\n")
        members = range(g if g else groups, n + 1, groups)
        wrote = False
        for i in members:
            out.write(f"member: uid=user{i:06d},{PEOPLE}\n")
            wrote = True
        if not wrote:
            # groupOfNames needs a member.
            out.write(f"member: {SUFFIX}\n")
        out.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="how many people")
    parser.add_argument("out", help="the LDIF file to write")
    parser.add_argument("--groups", type=int, default=20, help="how many groups (default 20)")
    parser.add_argument("--no-suffix", action="store_true",
                        help="leave out the suffix, ou=people and ou=groups")
    args = parser.parse_args()
    if args.n < 0 or args.groups < 1:
        sys.exit("N must be at least 0 and --groups at least 1")
    with open(args.out, "w", encoding="utf-8", newline="\n") as out:
        write(out, args.n, args.groups, not args.no_suffix)


if __name__ == "__main__":
    main()
