//! `type: crm` against emulated Daktela v6 and HubSpot v3 APIs
//! (`tests/crm_server.py`), through the real binary.

use serde_json::{json, Value};

use crate::common::crm::{CrmServer, TOKEN};
use crate::common::Sandbox;

fn daktela_contact(
    name: &str,
    title: &str,
    email: &str,
    account: &str,
    portal: &str,
    edited: &str,
) -> Value {
    json!({
        "name": name,
        "title": title,
        "firstname": title.split(' ').next(),
        "lastname": title.split(' ').nth(1),
        "account": account,
        "database": {"name": "default", "title": "Default"},
        "user": null,
        "description": "",
        "nps_score": null,
        "created": "2024-01-01 00:00:00",
        "edited": edited,
        "customFields": {
            "email": [email],
            "number": ["+420 777 000 111"],
            "portal_access": [portal],
            "licence_key": [format!("LK-{name}")],
        },
    })
}

fn daktela_accounts() -> Value {
    json!([
        {"name": "acme", "title": "Acme s.r.o.", "description": "", "edited": "2024-01-01 00:00:00",
         "customFields": {"domain": ["acme.cz", "acme.com"]}},
        {"name": "beta", "title": "Beta a.s.", "description": "", "edited": "2024-01-01 00:00:00",
         "customFields": {"domain": ["beta.cz"]}},
    ])
}

fn daktela_data(contacts: Vec<Value>, time: &str) -> Value {
    json!({"time": time, "contacts": contacts, "accounts": daktela_accounts()})
}

fn four_contacts() -> Vec<Value> {
    vec![
        daktela_contact(
            "c_1",
            "Jiří Dvořák",
            "jiri@acme.cz",
            "acme",
            "1",
            "2024-04-01 09:00:00",
        ),
        daktela_contact(
            "c_2",
            "Ann Lee",
            "ann@acme.cz",
            "acme",
            "1",
            "2024-04-01 09:00:00",
        ),
        daktela_contact(
            "c_3",
            "Bob Stone",
            "bob@beta.cz",
            "beta",
            "1",
            "2024-04-01 09:00:00",
        ),
        daktela_contact(
            "c_4",
            "Eve Moss",
            "eve@beta.cz",
            "beta",
            "0",
            "2024-04-01 09:00:00",
        ),
    ]
}

/// A config reading `url` as Daktela, with `extra` source keys.
fn daktela_config(url: &str, extra: &[&str]) -> String {
    let mut c = format!(
        "store: sqlite://liaison.db
safety:
  max_deprovision_ratio: 0.5
sources:
  - name: daktela
    type: crm
    preset: daktela
    url: {url}
    token: ${{file:daktela.token}}
    retry_backoff: 50ms
    map:
      name: \"{{{{ title }}}}\"
      email: \"{{{{ customFields.email[0] }}}}\"
      phone: \"{{{{ customFields.number[0] }}}}\"
      account_id: \"{{{{ account.name }}}}\"
      account_name: \"{{{{ account.title }}}}\"
      account_domains: \"{{{{ account.customFields.domain | join('|') }}}}\"
      attributes.licence_key: \"{{{{ customFields.licence_key[0] }}}}\"
    when: \"customFields.portal_access[0] == '1'\"
"
    );
    for k in extra {
        c.push_str(&format!("    {k}\n"));
    }
    c
}

fn sandbox(config: &str) -> Sandbox {
    let s = Sandbox::new(config);
    s.write("daktela.token", &format!("{TOKEN}\n"));
    s.write("hubspot.token", &format!("{TOKEN}\n"));
    s
}

fn statuses(s: &Sandbox) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = s
        .users()
        .iter()
        .map(|u| {
            (
                u["login"].as_str().unwrap().to_owned(),
                u["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn daktela_full_sync_maps_nested_fields_and_joins_accounts() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(four_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(&crm.url(), &[]));
    let out = s.sync(0);
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["created"], 3, "{out}");
    let jiri = s.user("jiri.dvorak");
    assert_eq!(jiri["email"], "jiri@acme.cz");
    assert_eq!(
        jiri["contacts"],
        json!(["c_1"]),
        "keyed by the contact's name"
    );
    assert_eq!(jiri["accounts"], json!(["acme"]));
    assert_eq!(jiri["attributes"]["licence_key"], "LK-c_1");
    // The account's domains came from accounts.json, joined by name.
    let accounts = s
        .run(&["users", "list", "--account", "acme", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(accounts.as_array().unwrap().len(), 2);
    let requests = crm.requests();
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/api/v6/accounts.json"),
        "{requests:?}"
    );
    assert!(requests.iter().all(|r| r["status"] == 200));
    assert!(
        requests.iter().all(|r| r["gzip"] == true),
        "answers are gzipped"
    );
    // A second run is a changes read, and changes nothing.
    let again = s.sync(0);
    assert_eq!(again["read"]["mode"], "changes", "{again}");
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(again["updated"], 0, "{again}");
}

#[test]
fn daktela_changes_read_filters_on_edited_and_a_flag_turned_off_disables() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(four_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(&crm.url(), &[]));
    s.sync(0);
    crm.clear_requests();
    let mut contacts = four_contacts();
    // Ann's flag turned off, Bob's phone changed: both edited after the cursor.
    contacts[1] = daktela_contact(
        "c_2",
        "Ann Lee",
        "ann@acme.cz",
        "acme",
        "0",
        "2024-05-01 10:30:00",
    );
    contacts[2]["customFields"]["number"] = json!(["+420 999"]);
    contacts[2]["edited"] = json!("2024-05-01 10:31:00");
    crm.set_data(&daktela_data(contacts, "2024-05-01 11:00:00"));
    let out = s.sync(0);
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["disabled"], 1, "{out}");
    assert_eq!(out["updated"], 1, "{out}");
    let contacts_requests: Vec<Value> = crm
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/api/v6/contacts.json")
        .collect();
    assert_eq!(contacts_requests.len(), 1, "{contacts_requests:?}");
    let q = &contacts_requests[0]["query"];
    assert_eq!(q["filter[0][field]"], "edited");
    assert_eq!(q["filter[0][operator]"], "gte");
    // The cursor (_time 10:00:00) less the 65 minutes of overlap.
    assert_eq!(q["filter[0][value]"], "2024-05-01 08:55:00");
    let ann = s.user("ann.lee");
    assert_eq!(ann["status"], "disabled");
    assert_eq!(ann["contacts"], json!([]), "unlinked");
    assert_eq!(s.user("jiri.dvorak")["status"], "active");
}

#[test]
fn daktela_a_deleted_contact_leaves_through_the_next_full_read() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(four_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(&crm.url(), &[]));
    s.sync(0);
    let mut contacts = four_contacts();
    contacts.remove(0);
    crm.set_data(&daktela_data(contacts, "2024-05-01 11:00:00"));
    // A changes read cannot see a deletion in Daktela.
    let changes = s.sync(0);
    assert_eq!(changes["disabled"], 0, "{changes}");
    let full = s
        .run(&["sync", "--once", "--full", "--format", "json"])
        .expect(0)
        .json();
    assert_eq!(full["disabled"], 1, "{full}");
    assert_eq!(s.user("jiri.dvorak")["status"], "disabled");
}

fn ten_contacts() -> Vec<Value> {
    (1..=10)
        .map(|i| {
            daktela_contact(
                &format!("c_{i:02}"),
                &format!("Person{i:02} Test"),
                &format!("p{i}@acme.cz"),
                "acme",
                "1",
                "2024-04-01 09:00:00",
            )
        })
        .collect()
}

#[test]
fn daktela_a_failure_on_page_3_of_5_deprovisions_nobody() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(ten_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(&crm.url(), &["page_size: 2", "retries: 1"]));
    assert_eq!(s.sync(0)["created"], 10);
    // The third page (skip 4) fails whatever the tries.
    crm.set_faults(&json!([{"path": "/api/v6/contacts.json", "query": {"skip": "4"}, "status": 500, "times": -1}]));
    crm.clear_requests();
    let out = s
        .run(&["sync", "--once", "--full", "--format", "json"])
        .expect(1)
        .json();
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(out["failure_kind"], "source_unreachable", "{out}");
    assert_eq!(out["retryable"], true, "{out}");
    assert!(
        out["failure"].as_str().unwrap().contains("HTTP 500"),
        "{out}"
    );
    assert!(
        statuses(&s).iter().all(|(_, st)| st == "active"),
        "{:?}",
        statuses(&s)
    );
    let tries = crm
        .requests()
        .iter()
        .filter(|r| r["query"]["skip"] == "4")
        .count();
    assert_eq!(tries, 2, "one try and one retry");
}

#[test]
fn daktela_a_500_a_429_and_a_slow_page_are_retried() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(ten_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(
        &crm.url(),
        &["page_size: 2", "timeout: 1s"],
    ));
    crm.set_faults(&json!([
        {"path": "/api/v6/contacts.json", "query": {"skip": "2"}, "status": 500, "times": 1},
        {"path": "/api/v6/contacts.json", "query": {"skip": "4"}, "status": 429, "retry_after": 1, "times": 1},
        {"path": "/api/v6/contacts.json", "query": {"skip": "6"}, "delay": 2.5, "times": 1},
    ]));
    let started = std::time::Instant::now();
    let out = s.sync(0);
    assert_eq!(out["created"], 10, "{out}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let statuses: Vec<i64> = crm
        .requests()
        .iter()
        .filter(|r| r["path"] == "/api/v6/contacts.json")
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert!(
        statuses.contains(&500) && statuses.contains(&429),
        "{statuses:?}"
    );
}

#[test]
fn crm_rate_limited_past_its_retries_fails_with_the_wait() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(ten_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(&crm.url(), &["retries: 1"]));
    crm.set_faults(
        &json!([{"path": "/api/v6/contacts.json", "status": 429, "retry_after": 1, "times": -1}]),
    );
    let out = s.sync(1);
    assert_eq!(out["failure_kind"], "source_rate_limited", "{out}");
    assert_eq!(out["retryable"], true, "{out}");
    assert!(s.users().is_empty());
}

#[test]
fn crm_a_bad_token_is_an_auth_failure_that_never_shows_the_token() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(ten_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(&crm.url(), &[]));
    s.write("daktela.token", "wrong-secret-token-9c1d\n");
    let run = s.run(&["sync", "--once", "--format", "json"]).expect(1);
    let out = run.json();
    assert_eq!(out["failure_kind"], "source_auth", "{out}");
    assert_eq!(out["retryable"], false, "{out}");
    assert!(out["failure"].as_str().unwrap().contains("401"), "{out}");
    assert!(
        !run.stdout.contains("wrong-secret-token") && !run.stderr.contains("wrong-secret-token")
    );
}

#[test]
fn crm_source_preview_shows_the_nested_fields_next_to_the_mapped_ones() {
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(four_contacts(), "2024-05-01 10:00:00"),
    );
    let s = sandbox(&daktela_config(&crm.url(), &[]));
    let run = s
        .run(&[
            "source", "preview", "daktela", "--limit", "2", "--format", "json",
        ])
        .expect(0);
    let text = &run.stdout;
    for part in [
        "customFields.email",
        "account.customFields.domain",
        "jiri@acme.cz",
        "acme.cz|acme.com",
        "c_1",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }
    let human = s
        .run(&["source", "preview", "daktela", "--limit", "1"])
        .expect(0);
    assert!(
        human.stdout.contains("customFields.portal_access"),
        "{}",
        human.stdout
    );
}

// --- HubSpot ---------------------------------------------------------------

fn hs_contact(
    id: &str,
    first: &str,
    last: &str,
    email: &str,
    companies: &[&str],
    portal: &str,
    modified: &str,
) -> Value {
    json!({
        "id": id,
        "properties": {
            "email": email,
            "firstname": first,
            "lastname": last,
            "portal_access": portal,
            "createdate": "2024-01-01T00:00:00.000Z",
            "lastmodifieddate": modified,
        },
        "companies": companies,
        "primary": companies.first(),
    })
}

fn hs_companies() -> Value {
    json!([
        {"id": "9001", "properties": {"name": "Acme", "domain": "acme.com"}},
        {"id": "9002", "properties": {"name": "Beta", "domain": "beta.io"}},
    ])
}

fn hs_data(contacts: Vec<Value>) -> Value {
    json!({"contacts": contacts, "companies": hs_companies()})
}

fn hs_three() -> Vec<Value> {
    vec![
        hs_contact(
            "101",
            "Ann",
            "Lee",
            "ann@acme.com",
            &["9002", "9001"],
            "true",
            "2024-04-01T09:00:00.000Z",
        ),
        hs_contact(
            "102",
            "Bob",
            "Stone",
            "bob@acme.com",
            &["9001"],
            "true",
            "2024-04-01T09:00:00.000Z",
        ),
        hs_contact(
            "103",
            "Eve",
            "Moss",
            "eve@beta.io",
            &["9002"],
            "true",
            "2024-04-01T09:00:00.000Z",
        ),
    ]
}

fn hubspot_config(url: &str, extra: &[&str]) -> String {
    let mut c = format!(
        "store: sqlite://liaison.db
safety:
  max_deprovision_ratio: 0.5
sources:
  - name: hubspot
    type: crm
    preset: hubspot
    url: {url}
    token: ${{file:hubspot.token}}
    retry_backoff: 50ms
    properties: [portal_access]
    map:
      name: \"{{{{ properties.firstname }}}} {{{{ properties.lastname }}}}\"
      email: \"{{{{ properties.email }}}}\"
      account_id: \"{{{{ companies.id[0] }}}}\"
      account_name: \"{{{{ companies.name[0] }}}}\"
      account_domains: \"{{{{ companies.domain[0] }}}}\"
      description: \"{{{{ companies.name | join(', ') }}}}\"
    when: \"properties.portal_access == 'true'\"
"
    );
    for k in extra {
        c.push_str(&format!("    {k}\n"));
    }
    c
}

#[test]
fn hubspot_full_sync_takes_every_company_primary_first() {
    let crm = CrmServer::start("hubspot", &hs_data(hs_three()));
    let s = sandbox(&hubspot_config(&crm.url(), &["page_size: 2"]));
    let out = s.sync(0);
    assert_eq!(out["created"], 3, "{out}");
    let ann = s.user("ann.lee");
    assert_eq!(ann["contacts"], json!(["101"]));
    assert_eq!(ann["accounts"], json!(["9002"]), "the primary company");
    assert_eq!(
        ann["description"], "Beta, Acme",
        "every company, primary first"
    );
    let requests = crm.requests();
    let lists: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"] == "/crm/v3/objects/contacts")
        .collect();
    assert_eq!(lists.len(), 2, "two pages of two: {lists:?}");
    assert_eq!(lists[0]["query"]["associations"], "companies");
    assert!(lists[0]["query"]["properties"]
        .as_str()
        .unwrap()
        .contains("portal_access"));
    assert_eq!(lists[1]["query"]["after"], "103");
    assert!(requests
        .iter()
        .any(|r| r["path"] == "/crm/v3/objects/companies/batch/read"));
}

#[test]
fn hubspot_changes_read_searches_and_an_archived_contact_is_disabled_through_the_guard() {
    let crm = CrmServer::start("hubspot", &hs_data(hs_three()));
    let s = sandbox(&hubspot_config(&crm.url(), &[]));
    s.sync(0);
    crm.clear_requests();
    let now = chrono_now_iso();
    let mut contacts = hs_three();
    contacts[1]["archived"] = json!(true);
    contacts[1]["archivedAt"] = json!(now);
    contacts[2]["properties"]["email"] = json!("eve.moss@beta.io");
    contacts[2]["properties"]["lastmodifieddate"] = json!(now);
    crm.set_data(&hs_data(contacts));
    let out = s.sync(0);
    assert_eq!(out["status"], "applied", "{out}");
    assert_eq!(out["disabled"], 1, "{out}");
    assert_eq!(out["updated"], 1, "{out}");
    assert_eq!(s.user("bob.stone")["status"], "disabled");
    assert_eq!(s.user("eve.moss")["email"], "eve.moss@beta.io");
    let requests = crm.requests();
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/crm/v3/objects/contacts/search"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/crm/v4/associations/contacts/companies/batch/read"),
        "{paths:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/crm/v3/objects/contacts" && r["query"]["archived"] == "true"),
        "{requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r["path"] == "/crm/v3/objects/contacts" && r["query"]["archived"] == "false"),
        "no full listing in a changes read"
    );
}

#[test]
fn hubspot_search_past_its_10000_cap_reads_in_windows() {
    // 10,050 contacts, each modified a millisecond after the previous.
    let base = 1_714_550_000_000i64;
    let contacts: Vec<Value> = (0..10_050)
        .map(|i| {
            let at = iso(base + i);
            hs_contact(
                &(1000 + i).to_string(),
                "P",
                &format!("N{i}"),
                &format!("p{i}@acme.com"),
                &["9001"],
                "false",
                &at,
            )
        })
        .collect();
    let crm = CrmServer::start("hubspot", &hs_data(contacts.clone()));
    let s = sandbox(&hubspot_config(
        &crm.url(),
        &["rate_limit: 500", "search_rate_limit: 500"],
    ));
    // Nobody is flagged: a cheap first full read that stores the cursor.
    s.sync(0);
    let mut contacts = contacts;
    let now = now_ms();
    for (i, c) in contacts.iter_mut().enumerate() {
        c["properties"]["lastmodifieddate"] = json!(iso(now - 20_000 + i as i64));
    }
    // The very last one is flagged: only a read past the cap finds it.
    contacts[10_049]["properties"]["portal_access"] = json!("true");
    crm.set_data(&hs_data(contacts));
    crm.clear_requests();
    let out = s.sync(0);
    assert_eq!(out["created"], 1, "{out}");
    let searches: Vec<Value> = crm
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/crm/v3/objects/contacts/search")
        .collect();
    assert!(
        searches.iter().all(|r| r["status"] == 200),
        "no search past the cap"
    );
    let windows: std::collections::BTreeSet<String> = searches
        .iter()
        .map(|r| {
            r["body"]["filterGroups"][0]["filters"][0]["value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(windows.len() >= 2, "{windows:?}");
    assert!(searches.iter().all(|r| r["body"]["limit"] == 200));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn chrono_now_iso() -> String {
    iso(now_ms())
}

/// Epoch ms as `2024-05-01T10:00:00.000Z`.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// --- the generic form, and config errors -------------------------------------

#[test]
fn rest_preset_reads_a_described_api_with_offset_paging_and_linked_accounts() {
    // The Daktela emulation, described generically.
    let crm = CrmServer::start(
        "daktela",
        &daktela_data(four_contacts(), "2024-05-01 10:00:00"),
    );
    let config = format!(
        "store: sqlite://liaison.db
sources:
  - name: generic
    type: crm
    preset: rest
    url: {}
    token: ${{file:daktela.token}}
    page_size: 2
    rest:
      contacts:
        path: /api/v6/contacts.json?sort[0][field]=name
        records: /result/data
        paging: {{type: offset, offset_param: skip, limit_param: take, total: /result/total}}
      changes:
        path: \"/api/v6/contacts.json?filter[0][field]=edited&filter[0][operator]=gte&filter[0][value]={{since}}\"
        format: \"%Y-%m-%d %H:%M:%S\"
      key: name
      account_link: account.name
      accounts:
        path: /api/v6/accounts.json
        records: /result/data
        paging: {{type: offset, offset_param: skip, limit_param: take}}
        key: name
      auth: {{type: header, name: X-AUTH-TOKEN}}
    map:
      name: \"{{{{ title }}}}\"
      email: \"{{{{ customFields.email[0] }}}}\"
      account_id: \"{{{{ accounts.name[0] }}}}\"
      account_domains: \"{{{{ accounts.customFields.domain | join('|') }}}}\"
    when: \"customFields.portal_access[0] == '1'\"
",
        crm.url()
    );
    let s = sandbox(&config);
    s.run(&["validate"]).expect(0);
    let out = s.sync(0);
    assert_eq!(out["created"], 3, "{out}");
    assert_eq!(s.user("jiri.dvorak")["accounts"], json!(["acme"]));
    let pages = crm
        .requests()
        .iter()
        .filter(|r| r["path"] == "/api/v6/contacts.json")
        .count();
    assert_eq!(pages, 2, "four contacts, two a page, stopped by the total");
    crm.clear_requests();
    let again = s.sync(0);
    assert_eq!(again["read"]["mode"], "changes", "{again}");
    let changes = crm.requests();
    assert!(
        changes
            .iter()
            .any(|r| r["query"]["filter[0][field]"] == "edited"),
        "{changes:?}"
    );
}

#[test]
fn crm_config_errors_are_located_with_suggestions() {
    let s = Sandbox::new(
        "store: sqlite://liaison.db
sources:
  - name: d
    type: crm
    preset: daktela
    url: ftp://crm.example.com
    tokn: x
    page_size: 5000
    properties: [portal_access]
    map:
      name: \"{{ title }}\"
      email: \"{{ customFields.email[0] }}\"
  - name: h
    type: crm
    preset: hubsport
    url: https://api.hubapi.com
    token: ${env:NO_SUCH_TOKEN_VARIABLE}
",
    );
    let run = s.run(&["validate"]).expect(2);
    let err = run.stderr;
    for part in [
        "liaison.yaml:7:5: sources[0].tokn: unknown key for a crm source; did you mean \"token\"?",
        "sources[0].url: expected an http:// or https:// URL",
        "sources[0].page_size: expected a number from 1 to 1000",
        "sources[0].properties: only for preset hubspot",
        "sources[0]: missing required key \"token\"",
        "sources[1].preset: unknown preset \"hubsport\"",
        "sources[1].token: environment variable \"NO_SUCH_TOKEN_VARIABLE\" is not set",
    ] {
        assert!(err.contains(part), "{part:?} missing from:\n{err}");
    }
}
