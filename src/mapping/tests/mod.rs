#![allow(clippy::unwrap_used)]

mod keyed;
mod standard;
mod templates;
mod throughput;
mod unparse;
mod when;

use std::sync::Arc;

use liaison_plugin_api::{Location, Record, Schema, Value};

use super::{MapError, MapSpec, Mapped, Mapping};
use crate::model::ContactFields;

/// A record with these (name, value) attributes.
fn record(attributes: &[(&str, &str)]) -> Record {
    let schema = Schema::new(attributes.iter().map(|(n, _)| (*n).to_owned()).collect());
    let values = attributes.iter().map(|(_, v)| Value::from(*v)).collect();
    Record::new(Location::line("test.csv", 2), Arc::new(schema), values)
}

fn contact(mapped: Mapped) -> ContactFields {
    match mapped {
        Mapped::Contact(c) => c.to_fields(),
        other => panic!("expected a contact, got {other:?}"),
    }
}

/// (contact_id, message) of an invalid result.
fn invalid(mapped: Mapped) -> (Option<String>, String) {
    match mapped {
        Mapped::Invalid {
            contact_id,
            message,
        } => (contact_id, message),
        other => panic!("expected invalid, got {other:?}"),
    }
}

fn spec(fields: &[(&str, &str)], when: Option<&str>) -> MapSpec {
    MapSpec {
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        when: when.map(str::to_owned),
        keyed: false,
    }
}

fn compile(fields: &[(&str, &str)], when: Option<&str>) -> Mapping {
    Mapping::compile(&spec(fields, when)).unwrap()
}

fn compile_err(fields: &[(&str, &str)], when: Option<&str>) -> Vec<MapError> {
    Mapping::compile(&spec(fields, when)).unwrap_err()
}

#[test]
fn mapping_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<Mapping>();
}
