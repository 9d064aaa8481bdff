-- Liaison store, version 2: what `users list --search` scans, and the
-- application id that tells a Liaison store from other programs' databases.

-- Each user's searchable fields (login, title, e-mail, description, attribute
-- values), folded for case and diacritics in Rust (src/store/search.rs), in a
-- narrow table of its own: a search scans ~80 bytes a user instead of the
-- whole user rows. Written with the user on every write path.
CREATE TABLE user_search (
    id   INTEGER PRIMARY KEY,                  -- users.id
    text TEXT NOT NULL
);

PRAGMA application_id = 1279869267;            -- 0x4C494153, "LIAS"
