#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use liaison_plugin_api::{
    BadRow, Connector, Item, ItemStream, Location, ReadContext, ReadMode, ReadRequest, Record,
    SourceError, Value, ValueRef,
};

use crate::{CsvConfig, CsvConnector, Encoding};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A full read of `connector`, as the host asks for it.
fn open(connector: &CsvConnector) -> Result<ItemStream<'_>, SourceError> {
    connector.read(&ReadRequest::full(), &ReadContext::default())
}

/// Every item of a complete read, without its end item (checked: full, no cursor).
fn read_all(config: CsvConfig) -> Vec<Item> {
    let connector = CsvConnector::new(config);
    let mut items = open(&connector)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    match items.pop() {
        Some(Item::End(end)) => assert_eq!((end.mode, end.cursor), (ReadMode::Full, None)),
        other => panic!("a complete read ends with its end item, not {other:?}"),
    }
    items
}

fn records(items: &[Item]) -> Vec<&Record> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Record(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn bad_rows(items: &[Item]) -> Vec<&BadRow> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Bad(b) => Some(b),
            _ => None,
        })
        .collect()
}

fn line_of(location: &Location) -> u64 {
    match location {
        Location::Line { line, .. } => *line,
        other => panic!("not a line location: {other}"),
    }
}

/// (line, value of `col`) for every record.
fn lines_and(items: &[Item], col: &str) -> Vec<(u64, String)> {
    records(items)
        .iter()
        .map(|r| (line_of(&r.location), r.get(col).unwrap().to_owned()))
        .collect()
}

const MULTILINE: &str = "id,name,note\n\
1,Ann,plain\n\
\n\
2,Bob,\"two\nlines\"\n\
3,Cyd,\"three\n\nlines, one blank\"\n\
\n\
\n\
4,Dan,\"\"\"quoted\"\"\"\n";

#[test]
fn lf_lines_count_quoted_newlines_and_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", MULTILINE.as_bytes());
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(
        lines_and(&items, "id"),
        [(2, "1"), (4, "2"), (6, "3"), (11, "4")].map(|(l, v)| (l, v.to_owned()))
    );
    let recs = records(&items);
    assert_eq!(recs[1].get("note"), Some("two\nlines"));
    assert_eq!(recs[2].get("note"), Some("three\n\nlines, one blank"));
    assert_eq!(recs[3].get("note"), Some("\"quoted\""));
    assert_eq!(
        recs[0].location.to_string(),
        format!("{}:2", path.display())
    );
}

#[test]
fn crlf_lines_match_lf_lines() {
    let dir = tempfile::tempdir().unwrap();
    let crlf = MULTILINE.replace('\n', "\r\n");
    let path = write(dir.path(), "a.csv", crlf.as_bytes());
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(
        lines_and(&items, "id"),
        [(2, "1"), (4, "2"), (6, "3"), (11, "4")].map(|(l, v)| (l, v.to_owned()))
    );
    // Line breaks inside quotes are kept as written.
    assert_eq!(records(&items)[1].get("note"), Some("two\r\nlines"));
}

#[test]
fn file_without_final_newline_and_leading_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        b"\r\n\r\nid,name\r\n1,Ann\r\n\r\n2,Bob",
    );
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(
        lines_and(&items, "name"),
        [(4, "Ann"), (6, "Bob")].map(|(l, v)| (l, v.to_owned()))
    );
}

#[test]
fn utf8_bom_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"\xEF\xBB\xBFid,name\n1,Ann\n");
    let items = read_all(CsvConfig::new(&path));
    let recs = records(&items);
    assert_eq!(recs[0].schema.names(), ["id", "name"]);
    assert_eq!(recs[0].get("id"), Some("1"));
}

#[test]
fn windows_1250_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    // "Jiří" is 4A 69 F8 ED in Windows-1250; "Dvořák" is 44 76 6F F8 E1 6B.
    let mut bytes = b"id;name\r\n1;".to_vec();
    bytes.extend_from_slice(&[
        0x4A, 0x69, 0xF8, 0xED, b' ', 0x44, 0x76, 0x6F, 0xF8, 0xE1, 0x6B,
    ]);
    bytes.extend_from_slice(b"\r\n2;\"x\r\ny\"\r\n3;z\r\n");
    let path = write(dir.path(), "a.csv", &bytes);
    let config = CsvConfig {
        delimiter: b';',
        encoding: Encoding::Windows1250,
        ..CsvConfig::new(&path)
    };
    let items = read_all(config);
    assert_eq!(
        lines_and(&items, "name"),
        [(2, "Jiří Dvořák"), (3, "x\r\ny"), (5, "z")].map(|(l, v)| (l, v.to_owned()))
    );
}

#[test]
fn semicolon_and_tab_delimiters() {
    let dir = tempfile::tempdir().unwrap();
    let semi = write(dir.path(), "semi.csv", b"id;name\n1;\"Ann; Smith\"\n");
    let items = read_all(CsvConfig {
        delimiter: b';',
        ..CsvConfig::new(&semi)
    });
    assert_eq!(records(&items)[0].get("name"), Some("Ann; Smith"));

    let tab = write(dir.path(), "tab.tsv", b"id\tname\n1\tAnn, Smith\n");
    let items = read_all(CsvConfig {
        delimiter: b'\t',
        ..CsvConfig::new(&tab)
    });
    assert_eq!(records(&items)[0].get("name"), Some("Ann, Smith"));
}

#[test]
fn custom_quote_character() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id,name\n1,'Smith, Ann'\n");
    let items = read_all(CsvConfig {
        quote: b'\'',
        ..CsvConfig::new(&path)
    });
    assert_eq!(records(&items)[0].get("name"), Some("Smith, Ann"));
}

#[test]
fn glob_reads_matching_files_in_sorted_order_each_with_its_header() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.csv", b"name,id\nBob,2\n");
    write(dir.path(), "a.csv", b"id,name\n1,Ann\n");
    write(dir.path(), "c.txt", b"id,name\n3,Cyd\n");
    std::fs::create_dir(dir.path().join("d.csv")).unwrap();
    let items = read_all(CsvConfig::new(dir.path().join("*.csv")));
    let recs = records(&items);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].get("name"), Some("Ann"));
    assert_eq!(recs[1].get("name"), Some("Bob"));
    assert_eq!(recs[1].get("id"), Some("2"));
    assert!(recs[1].location.to_string().ends_with("b.csv:2"));
}

#[test]
fn glob_matching_nothing_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let connector = CsvConnector::new(CsvConfig::new(dir.path().join("*.csv")));
    let err = open(&connector).err().unwrap();
    assert!(matches!(err, SourceError::NotFound(_)), "{err}");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.csv");
    let connector = CsvConnector::new(CsvConfig::new(&path));
    let err = open(&connector).err().unwrap();
    assert!(matches!(err, SourceError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.csv"), "{err}");
    assert!(connector.check(&ReadContext::default()).is_err());
    assert_eq!(connector.kind(), "csv");
}

#[test]
fn wrong_column_count_is_a_bad_row_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        b"id,name,email\r\n1,Ann,ann@example.com\r\n\r\n2,\"Bob\r\nB\"\r\n3,Cyd,cyd@example.com,extra\r\n4,Dan,dan@example.com\r\n",
    );
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(
        lines_and(&items, "id"),
        [(2, "1"), (7, "4")].map(|(l, v)| (l, v.to_owned()))
    );
    let bad = bad_rows(&items);
    assert_eq!(bad.len(), 2);
    assert_eq!(line_of(&bad[0].location), 4);
    assert_eq!(bad[0].message, "expected 3 fields, found 2");
    let short = bad[0].partial.as_ref().unwrap();
    assert_eq!(short.get("id"), Some("2"));
    assert_eq!(short.get("email"), None);
    assert_eq!(line_of(&bad[1].location), 6);
    assert_eq!(bad[1].message, "expected 3 fields, found 4");
    let long = bad[1].partial.as_ref().unwrap();
    assert_eq!(long.len(), 3, "cut to the header");
    assert_eq!(long.get("id"), Some("3"));
}

#[test]
fn invalid_utf8_is_a_bad_row_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.csv",
        b"id,name,email\n1,Ann,ann@example.com\n2,Ji\xF8\xED,jiri@example.com\n3,Cyd,cyd@example.com\n",
    );
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(records(&items).len(), 2);
    let bad = bad_rows(&items);
    assert_eq!(bad.len(), 1);
    assert_eq!(line_of(&bad[0].location), 3);
    assert!(
        bad[0].message.contains("invalid UTF-8"),
        "{}",
        bad[0].message
    );
    assert!(bad[0].message.contains("\"name\""), "{}", bad[0].message);
    let partial = bad[0].partial.as_ref().unwrap();
    assert_eq!(partial.get("id"), Some("2"));
    assert_eq!(partial.get("name"), Some("Ji\u{FFFD}\u{FFFD}"));
    assert_eq!(partial.get("email"), Some("jiri@example.com"));
}

#[test]
fn character_split_across_fields_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    // "\xC3" then "\xA9" would be "é" if the fields were joined.
    let path = write(dir.path(), "a.csv", b"a,b\n\xC3,\xA9\n");
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(bad_rows(&items).len(), 1);
    assert!(bad_rows(&items)[0].message.contains("\"a\""));
}

#[test]
fn undecodable_header_fails_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id,n\xFFme\n1,Ann\n");
    let connector = CsvConnector::new(CsvConfig::new(&path));
    let mut items = open(&connector).unwrap();
    let err = items.next().unwrap().unwrap_err();
    assert!(matches!(err, SourceError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("a.csv:1"), "{err}");
    assert!(items.next().is_none(), "the stream ends after an error");
}

#[test]
fn empty_file_and_header_only_file_have_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.csv", b"");
    assert!(read_all(CsvConfig::new(&empty)).is_empty());
    let bom_only = write(dir.path(), "bom.csv", b"\xEF\xBB\xBF");
    assert!(read_all(CsvConfig::new(&bom_only)).is_empty());
    let header_only = write(dir.path(), "header.csv", b"id,name\r\n");
    assert!(read_all(CsvConfig::new(&header_only)).is_empty());
}

#[test]
fn blank_rows_are_skipped_like_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id;name\n1;Ann\n;\n   \n2;Bob\n;;\n");
    let items = read_all(CsvConfig {
        delimiter: b';',
        ..CsvConfig::new(&path)
    });
    assert!(bad_rows(&items).is_empty());
    assert_eq!(
        lines_and(&items, "id"),
        [(2, "1"), (5, "2")].map(|(l, v)| (l, v.to_owned()))
    );
}

#[test]
fn without_header_columns_are_named_by_config_or_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"1,Ann\n2,Bob\n3\n");
    let items = read_all(CsvConfig {
        header: false,
        ..CsvConfig::new(&path)
    });
    assert_eq!(
        lines_and(&items, "col2"),
        [(1, "Ann"), (2, "Bob")].map(|(l, v)| (l, v.to_owned()))
    );
    assert_eq!(bad_rows(&items)[0].message, "expected 2 fields, found 1");

    let items = read_all(CsvConfig {
        header: false,
        columns: Some(vec!["contact_id".into(), "name".into()]),
        ..CsvConfig::new(&path)
    });
    assert_eq!(records(&items)[0].get("name"), Some("Ann"));
    assert_eq!(
        records(&items)[0]
            .values()
            .map(ValueRef::to_value)
            .collect::<Vec<_>>(),
        [Value::from("1"), Value::from("Ann")]
    );
}

#[test]
fn header_names_are_trimmed_and_columns_can_rename_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b" id , First Name \n1,Ann\n");
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(records(&items)[0].get("First Name"), Some("Ann"));

    let items = read_all(CsvConfig {
        columns: Some(vec!["contact_id".into(), "name".into()]),
        ..CsvConfig::new(&path)
    });
    assert_eq!(lines_and(&items, "name"), [(2, "Ann".to_owned())]);
}

#[test]
fn records_share_one_schema_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id\n1\n2\n");
    let items = read_all(CsvConfig::new(&path));
    let recs = records(&items);
    assert!(std::sync::Arc::ptr_eq(&recs[0].schema, &recs[1].schema));
}

#[test]
fn rows_larger_than_the_buffers_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(200_000);
    let many: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    let header: Vec<String> = (0..500).map(|i| format!("c{i}")).collect();
    let body = format!(
        "id,note\n1,\"{long}\n{long}\"\n2,b\n\n{}\n{}\n",
        header.join(","),
        many.join(",")
    );
    let path = write(dir.path(), "a.csv", body.as_bytes());
    let items = read_all(CsvConfig::new(&path));
    let recs = records(&items);
    assert_eq!(recs[0].get("note").map(str::len), Some(400_001));
    assert_eq!(line_of(&recs[1].location), 4);
    assert_eq!(
        bad_rows(&items).len(),
        2,
        "the 500-field rows do not fit the header"
    );
    assert_eq!(line_of(&bad_rows(&items)[1].location), 7);
}

/// Throughput on a million rows (about 124 MB), CRLF, some quoted fields.
/// Run with `cargo test --release -p liaison-plugin-csv -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check: run in release"]
fn throughput_one_million_rows() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    out.write_all(b"contact_id,name,email,phone,account_id,account_name,grants\r\n")
        .unwrap();
    for i in 0..1_000_000u32 {
        write!(
            out,
            "c-{i:07},Jiří Dvořák {i},jiri.dvorak{i}@example.com,+420 777 {i:06},acme-{a},\"Acme, s.r.o. {a}\",sales|support\r\n",
            a = i % 1000
        )
        .unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let size = std::fs::metadata(&path).unwrap().len();
    let start = std::time::Instant::now();
    let connector = CsvConnector::new(CsvConfig::new(&path));
    let (mut good, mut bad, mut last_line) = (0u64, 0u64, 0u64);
    for item in open(&connector).unwrap() {
        match item.unwrap() {
            Item::Record(r) => {
                good += 1;
                last_line = line_of(&r.location);
            }
            Item::Bad(_) => bad += 1,
            Item::Deleted(_) | Item::End(_) => {}
        }
    }
    let elapsed = start.elapsed();
    assert_eq!((good, bad, last_line), (1_000_000, 0, 1_000_001));
    eprintln!(
        "read {good} rows, {:.0} MB in {elapsed:?} ({:.0} MB/s)",
        size as f64 / 1e6,
        size as f64 / 1e6 / elapsed.as_secs_f64()
    );
}

/// The error that ends the read of `path`: the items before it must be `Ok`.
fn read_error(config: CsvConfig) -> SourceError {
    let connector = CsvConnector::new(config);
    let mut items = match open(&connector) {
        Ok(items) => items,
        Err(e) => return e,
    };
    let err = loop {
        match items.next() {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the read did not fail"),
        }
    };
    assert!(items.next().is_none(), "the stream ends after an error");
    err
}

#[test]
fn unterminated_quote_fails_the_read_naming_the_line_where_the_field_starts() {
    let dir = tempfile::tempdir().unwrap();
    // Row 3 holds a quoted multi-line note that is closed; the stray quote opens
    // a field on line 5, in the middle of row 4, and nothing closes it.
    let path = write(
        dir.path(),
        "a.csv",
        b"id,name,note\n1,Ann,x\n2,Bob,\"two\nlines\"\n3,\"Cyd\n4,Dan,y\n5,Eve,z\n",
    );
    let err = read_error(CsvConfig::new(&path));
    assert!(matches!(err, SourceError::Invalid(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:5: ", path.display())),
        "{text}"
    );
    assert!(text.contains("unterminated quoted field"), "{text}");

    // Also without a final line break, and in a field after a multi-line one.
    let path = write(dir.path(), "b.csv", b"id,note\r\n1,\"a\r\nb\",\"c\r\nd");
    let text = read_error(CsvConfig::new(&path)).to_string();
    assert!(
        text.starts_with(&format!("{}:3: ", path.display())),
        "{text}"
    );
}

#[test]
fn a_closed_quote_at_the_end_of_the_file_is_not_unterminated() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id,note\n1,\"a\nb\"");
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(records(&items)[0].get("note"), Some("a\nb"));
    // A quote inside an unquoted field is a plain character (RFC 4180 leniency).
    let path = write(dir.path(), "b.csv", b"id,note\n1,5\" disk\n2,x\n");
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(lines_and(&items, "note")[0], (2, "5\" disk".to_owned()));
    assert_eq!(records(&items).len(), 2);
}

#[test]
fn over_long_record_is_a_bad_row_and_reading_resumes_at_the_next_line() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(crate::MAX_RECORD_BYTES + 10);
    let body = format!("id,note\n1,a\n2,{long}\n3,b\n4,{long},{long}\r\n5,c");
    let path = write(dir.path(), "a.csv", body.as_bytes());
    let items = read_all(CsvConfig::new(&path));
    let short = |v: String| {
        if v.len() > 10 {
            format!("{} bytes", v.len())
        } else {
            v
        }
    };
    let found: Vec<(u64, String)> = lines_and(&items, "note")
        .into_iter()
        .map(|(l, v)| (l, short(v)))
        .collect();
    assert_eq!(
        found,
        [(2, "a"), (4, "b"), (6, "c")].map(|(l, v)| (l, v.to_owned()))
    );
    let bad = bad_rows(&items);
    assert_eq!(bad.len(), 2);
    assert_eq!(
        bad.iter().map(|b| line_of(&b.location)).collect::<Vec<_>>(),
        [3, 5]
    );
    assert!(bad[0].message.contains("longer than"), "{}", bad[0].message);
    // The fields read whole before the limit are kept, to tell the contact.
    let partial = bad[0].partial.as_ref().unwrap();
    assert_eq!(partial.get("id"), Some("2"));
    assert_eq!(partial.get("note"), None);
}

#[test]
fn a_file_of_nul_bytes_fails_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", &vec![0u8; 3 * crate::MAX_RECORD_BYTES]);
    let text = read_error(CsvConfig::new(&path)).to_string();
    assert!(
        text.starts_with(&format!("{}:1: ", path.display())),
        "{text}"
    );
    assert!(text.contains("header"), "{text}");
}

#[test]
fn a_quoted_field_open_past_the_record_limit_fails_the_read() {
    let dir = tempfile::tempdir().unwrap();
    // A stray quote early in a big file: the limit is reached before the end.
    let mut body = b"id,name\n1,\"Ann\n".to_vec();
    for i in 2..100_000 {
        body.extend_from_slice(format!("{i},User {i}\n").as_bytes());
    }
    let path = write(dir.path(), "a.csv", &body);
    let text = read_error(CsvConfig::new(&path)).to_string();
    assert!(
        text.starts_with(&format!("{}:2: ", path.display())),
        "{text}"
    );
    assert!(text.contains("quoted field"), "{text}");
}

#[cfg(unix)]
#[test]
fn a_path_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("zero.csv");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let err = read_error(CsvConfig::new(&link));
    assert!(matches!(err, SourceError::Invalid(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("zero.csv"), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
    let err = read_error(CsvConfig::new(dir.path()));
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn duplicate_header_names_fail_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"\nid,email, Email ,email\n1,a,b,c\n");
    let err = read_error(CsvConfig::new(&path));
    assert!(matches!(err, SourceError::Invalid(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:2: ", path.display())),
        "{text}"
    );
    assert!(text.contains("\"email\""), "{text}");
    assert!(text.contains("columns 2 and 4"), "{text}");
    // Names that differ only in case are different columns.
    let path = write(dir.path(), "b.csv", b"id,email,Email\n1,a,b\n");
    assert_eq!(records(&read_all(CsvConfig::new(&path))).len(), 1);
}

#[test]
fn undefined_windows_1250_bytes_are_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    // 0x81, 0x83, 0x88, 0x90 and 0x98 are not characters in Windows-1250.
    for undefined in [0x81u8, 0x83, 0x88, 0x90, 0x98] {
        let mut bytes = b"id;name\r\n1;Ann\r\n2;B".to_vec();
        bytes.push(undefined);
        bytes.extend_from_slice(b"b\r\n3;Cyd\r\n");
        let path = write(dir.path(), "a.csv", &bytes);
        let items = read_all(CsvConfig {
            delimiter: b';',
            encoding: Encoding::Windows1250,
            ..CsvConfig::new(&path)
        });
        assert_eq!(
            lines_and(&items, "name"),
            [(2, "Ann"), (4, "Cyd")].map(|(l, v)| (l, v.to_owned())),
            "byte {undefined:#x}"
        );
        let bad = bad_rows(&items);
        assert_eq!(bad.len(), 1, "byte {undefined:#x}");
        assert_eq!(line_of(&bad[0].location), 3);
        assert!(
            bad[0].message.contains("undefined Windows-1250 byte"),
            "{}",
            bad[0].message
        );
        assert!(bad[0].message.contains("\"name\""), "{}", bad[0].message);
        assert_eq!(bad[0].partial.as_ref().unwrap().get("id"), Some("2"));
    }
}

#[test]
fn an_undefined_windows_1250_byte_in_the_header_fails_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "a.csv", b"id;n\x98me\r\n1;Ann\r\n");
    let err = read_error(CsvConfig {
        delimiter: b';',
        encoding: Encoding::Windows1250,
        ..CsvConfig::new(&path)
    });
    assert!(err.to_string().contains("a.csv:1"), "{err}");
}

#[test]
fn cr_only_line_endings_count_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Old Mac files end lines with CR alone; a quoted field may hold one too.
    let cr = MULTILINE.replace('\n', "\r");
    let path = write(dir.path(), "a.csv", cr.as_bytes());
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(
        lines_and(&items, "id"),
        [(2, "1"), (4, "2"), (6, "3"), (11, "4")].map(|(l, v)| (l, v.to_owned()))
    );
    // Mixed endings, a CR at the end of a read buffer, and a CR before a quote.
    let mut mixed = b"id,name\r1,Ann\n2,\"B\rb\"\r\n\r3,Cyd\r\r\n4,Dan\r".to_vec();
    let path = write(dir.path(), "b.csv", &mixed);
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(
        lines_and(&items, "id"),
        [(2, "1"), (3, "2"), (6, "3"), (8, "4")].map(|(l, v)| (l, v.to_owned()))
    );
    mixed.splice(0..0, std::iter::repeat_n(b'\r', 64 * 1024 - 1));
    let path = write(dir.path(), "c.csv", &mixed);
    let items = read_all(CsvConfig::new(&path));
    assert_eq!(line_of(&records(&items)[0].location), 64 * 1024 + 1);
}

#[test]
fn a_row_of_exactly_the_limit_is_read_and_blank_lines_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    // `2,` and the note: MAX_RECORD_BYTES bytes before the line break.
    let note = "y".repeat(crate::MAX_RECORD_BYTES - 2);
    let blank = "\r\n".repeat(crate::MAX_RECORD_BYTES);
    let body = format!("id,note\n1,a\n{blank}2,{note}\r\n3,b\n");
    let path = write(dir.path(), "a.csv", body.as_bytes());
    let items = read_all(CsvConfig::new(&path));
    assert!(bad_rows(&items).is_empty());
    let lines: Vec<(u64, usize)> = lines_and(&items, "note")
        .into_iter()
        .map(|(l, v)| (l, v.len()))
        .collect();
    let at = crate::MAX_RECORD_BYTES as u64 + 3;
    assert_eq!(lines, [(2, 1), (at, note.len()), (at + 1, 1)]);
}
