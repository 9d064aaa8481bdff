-- Liaison store, version 4: accounts (companies) with their e-mail domains,
-- fed by the sources' account columns and by the config's `accounts:`.

-- The domains a contact's row gives its account (`account_domains`), checked
-- and lower-cased, joined by `|`; NULL when the row says none.
ALTER TABLE contacts ADD COLUMN account_domains TEXT;
-- The domains each account's contacts give, to recompute an account's
-- domains when one of them changes: covering, so that is a range of the
-- index alone. Partial: rows without domains (every row of a source without
-- the column) cost no entry. (Rebuilt after bulk loads: src/store/sqlite/write.rs.)
CREATE INDEX contacts_account_domains ON contacts (account_id, linked, account_domains)
    WHERE account_domains IS NOT NULL;

-- One row per account id any source or the config has named.
CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    name           TEXT,               -- the latest non-empty name a source gave
    domains        TEXT NOT NULL,      -- the linked contacts' domains: sorted, `|`-joined
    config_name    TEXT,               -- from `accounts:`; NULL: the config does not list it
    config_domains TEXT,               -- from `accounts:`: sorted, `|`-joined
    updated_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- Each account's domains (its sources' and its config's, together), by
-- domain: what a registration's address is matched on.
CREATE TABLE account_domains (
    domain     TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (domain, account_id)
) WITHOUT ROWID;

-- The accounts of a store written before this version: every account id its
-- contacts name, each with the name its contact of the smallest (source,
-- contact id) gives (SQLite takes the bare column from the row `min` picks).
INSERT INTO accounts (id, name, domains, updated_at)
    SELECT account_id, account_name, '', CAST(strftime('%s', 'now') AS INTEGER) * 1000
    FROM (SELECT account_id, account_name, min(source || char(31) || contact_id)
          FROM contacts
          WHERE account_id IS NOT NULL AND account_name IS NOT NULL AND account_name <> ''
          GROUP BY account_id);
INSERT OR IGNORE INTO accounts (id, name, domains, updated_at)
    SELECT DISTINCT account_id, NULL, '', CAST(strftime('%s', 'now') AS INTEGER) * 1000
    FROM contacts WHERE account_id IS NOT NULL;
