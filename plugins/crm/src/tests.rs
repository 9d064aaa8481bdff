//! Pure parts of the presets: answers parsed, queries built, times written.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use liaison_plugin_api::{Connector, Cursor, ReadContext, ReadRequest, SourceError};
use serde_json::json;

use crate::{CrmConfig, CrmConnector, Preset, Secret, TimeFormat};

#[test]
fn times_are_written_as_the_rest_form_says() {
    let ms = 1_714_557_600_123;
    assert_eq!(
        crate::rest::format_time(ms, &TimeFormat::Rfc3339),
        "2024-05-01T10:00:00Z"
    );
    assert_eq!(
        crate::rest::format_time(ms, &TimeFormat::Unix),
        "1714557600"
    );
    assert_eq!(
        crate::rest::format_time(ms, &TimeFormat::UnixMs),
        "1714557600123"
    );
    assert_eq!(
        crate::rest::format_time(ms, &TimeFormat::Pattern("%Y-%m-%d %H:%M:%S".into())),
        "2024-05-01 10:00:00"
    );
}

#[test]
fn a_cursor_this_connector_did_not_make_asks_for_a_full_read() {
    let url = url::Url::parse("http://127.0.0.1:9").unwrap();
    let connector = CrmConnector::new(CrmConfig::new(
        "crm",
        Preset::Hubspot,
        url,
        Some(Secret::new("t")),
    ));
    let err = connector
        .read(
            &ReadRequest::changes(Cursor::new("12345")),
            &ReadContext::default(),
        )
        .err()
        .unwrap();
    assert!(matches!(err, SourceError::CursorExpired(_)), "{err}");
}

#[test]
fn an_unreachable_crm_fails_the_read_without_an_end_and_without_the_token() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let mut config = CrmConfig::new(
        "crm",
        Preset::Daktela,
        url,
        Some(Secret::new("very-secret-token")),
    );
    config.retries = 1;
    config.retry_backoff = Duration::from_millis(10);
    let connector = CrmConnector::new(config);
    let ctx = ReadContext::default().with_runtime(runtime.handle().clone());
    let items: Vec<_> = connector
        .read(&ReadRequest::full(), &ctx)
        .unwrap()
        .collect();
    assert_eq!(items.len(), 1, "{items:?}");
    let Err(err) = &items[0] else {
        panic!("{items:?}")
    };
    assert!(matches!(err, SourceError::Unreachable(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("source \"crm\" (crm daktela)") && text.contains("/api/v6/contacts.json"),
        "{text}"
    );
    assert!(!text.contains("very-secret-token"), "{text}");
    assert_eq!(format!("{:?}", connector.config().token), "Some(***)");
}

#[test]
fn a_hubspot_search_window_is_built_as_the_api_takes_it() {
    let props = vec!["email".to_owned()];
    let body = crate::hubspot::window_body(1000, false, &props, 400);
    assert_eq!(
        body,
        json!({
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1000"}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["email"],
            "limit": 200,
            "after": "400",
        })
    );
}
