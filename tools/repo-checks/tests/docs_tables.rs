//! Tables in the docs that mirror the code: a change to one that the other does not follow fails here.

#[allow(dead_code)]
mod common;

use std::collections::BTreeSet;

use common::read;
use dittofs_s3_policy::dittoserver::access::{INERT_SPEC_FIELDS, SECRET_REFERENCES};
use dittofs_s3_policy::settings::Settings;
use dittofs_s3_policy::workload::routes::ROUTE_VARIABLES;
use serde_json::Value;

/// The rows of the first Markdown table whose header line starts with `header`.
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|line| !line.starts_with(header));
    assert!(lines.next().is_some(), "no table with header {header}");
    lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// Every `code` span of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_threat_models_field_table_lists_exactly_the_inert_fields() {
    let doc = read("docs/threat-model.md");
    let rows = table_rows(&doc, "| `spec` field | asks | why |");
    let inert: BTreeSet<String> = rows
        .iter()
        .filter(|row| row.get(1).map(String::as_str) == Some("no"))
        .flat_map(|row| code_spans(&row[0]))
        .collect();
    let code: BTreeSet<String> = INERT_SPEC_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(inert, code, "docs/threat-model.md vs INERT_SPEC_FIELDS");
    for reference in SECRET_REFERENCES {
        assert!(
            doc.contains(&format!("- `{reference}`")),
            "docs/threat-model.md does not list {reference}"
        );
    }
}

#[test]
fn the_threat_models_route_table_names_every_route_variable() {
    let doc = read("docs/threat-model.md");
    let rows = table_rows(&doc, "| in the `dittofs` container | why it is a route |");
    let documented: BTreeSet<String> = rows
        .iter()
        .filter(|row| row[0].starts_with("env "))
        .flat_map(|row| code_spans(&row[0]))
        .collect();
    let code: BTreeSet<String> = ROUTE_VARIABLES
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    assert_eq!(documented, code, "docs/threat-model.md vs ROUTE_VARIABLES");
}

#[test]
fn the_readme_settings_table_has_every_setting_with_its_default() {
    let rows = table_rows(&read("README.md"), "| setting | default | meaning |");
    let defaults = serde_json::to_value(Settings::default()).expect("settings serialise");
    let Value::Object(defaults) = defaults else {
        panic!("settings are an object")
    };
    let documented: BTreeSet<String> = rows.iter().flat_map(|row| code_spans(&row[0])).collect();
    let code: BTreeSet<String> = defaults.keys().cloned().collect();
    assert_eq!(documented, code, "README settings table vs Settings");
    for row in &rows {
        let name = &code_spans(&row[0])[0];
        let expected = match &defaults[name] {
            Value::Null => "any".to_owned(),
            Value::String(text) => format!("`{text}`"),
            other => format!("`{other}`"),
        };
        assert_eq!(row[1], expected, "default of {name} in the README");
    }
}
