//! The OpenAPI 3.1 description of `/api` (`openapi.json`, written by hand, embedded at
//! build time), served at `GET /api/openapi.json`. The tests below keep it true: every
//! route the API modules register (their `api_routes!` tables) is described, and nothing
//! else; no route is registered outside those tables. The demo's routes are described in
//! `openapi-demo.json` (paths and their tag, using the components of `openapi.json`), merged
//! in only when the demo is built: a real box's binary carries no word of them.

use actix_web::HttpResponse;

/// What a real box serves.
const BOX: &str = include_str!("openapi.json");

/// The document this build serves: the box's, plus the demo's routes in a demo build.
pub fn document() -> &'static str {
    #[cfg(feature = "demo")]
    {
        static MERGED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        MERGED.get_or_init(|| with_demo(BOX, include_str!("openapi-demo.json")))
    }
    #[cfg(not(feature = "demo"))]
    BOX
}

/// `document` with `demo`'s paths and tags added.
#[cfg(feature = "demo")]
fn with_demo(document: &str, demo: &str) -> String {
    let mut document: serde_json::Value =
        serde_json::from_str(document).expect("openapi.json is JSON (tested)");
    let demo: serde_json::Value =
        serde_json::from_str(demo).expect("openapi-demo.json is JSON (tested)");
    if let (Some(paths), Some(demo_paths)) =
        (document["paths"].as_object_mut(), demo["paths"].as_object())
    {
        paths.extend(demo_paths.clone());
    }
    if let (Some(tags), Some(demo_tags)) =
        (document["tags"].as_array_mut(), demo["tags"].as_array())
    {
        tags.extend(demo_tags.iter().cloned());
    }
    document.to_string()
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-cache"))
        .body(document())
}

#[cfg(test)]
mod tests {
    use super::super::routes::ApiRoute;
    use super::super::{api, backup_api, lightning_api, pairing_api, update_api};
    use super::document;
    use std::collections::BTreeSet;

    fn registered() -> BTreeSet<(String, String)> {
        #[allow(unused_mut)] // without the demo there is nothing to add
        let mut tables = vec![
            api::ROUTES,
            lightning_api::ROUTES,
            backup_api::ROUTES,
            pairing_api::ROUTES,
            update_api::ROUTES,
        ];
        #[cfg(feature = "demo")]
        tables.extend([backup_api::DEMO_ROUTES, super::super::demo_api::ROUTES]);
        tables
            .iter()
            .flat_map(|table| table.iter())
            .map(|ApiRoute { method, path }| (method.to_string(), path.to_string()))
            .collect()
    }

    fn described() -> BTreeSet<(String, String)> {
        let document: serde_json::Value = serde_json::from_str(document()).unwrap();
        document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, operations)| {
                operations
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.to_ascii_uppercase(), path.clone()))
            })
            .collect()
    }

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let registered = registered();
        let described = described();
        let missing: Vec<_> = registered.difference(&described).collect();
        assert!(
            missing.is_empty(),
            "routes missing from src/web/openapi.json: {missing:?}"
        );
        let extra: Vec<_> = described.difference(&registered).collect();
        assert!(
            extra.is_empty(),
            "openapi.json describes routes that do not exist: {extra:?}"
        );
    }

    /// A route registered by hand (`.route(`, `web::resource(`) would escape the tables,
    /// and the test above could not see it.
    #[test]
    fn no_api_route_is_registered_outside_the_tables() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            // The macro itself, the page's own files and the trust page (not under /api),
            // diagnostic mode's page (its own small server, only while the box cannot
            // start; the README lists its routes), and this test.
            if !name.ends_with(".rs")
                || [
                    "routes.rs",
                    "assets.rs",
                    "trust.rs",
                    "diagnostic.rs",
                    "openapi.rs",
                ]
                .contains(&name.as_str())
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for needle in [".route(\"", "web::resource(", "web::scope("] {
                assert!(
                    !text.contains(needle),
                    "{name} registers a route by hand ({needle}…): use api_routes! so that \
                     openapi.json is checked against it"
                );
            }
        }
    }

    #[test]
    fn the_description_is_openapi_3_1_and_every_operation_is_complete() {
        let document: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|code| code.starts_with('2')),
                    "{method} {path} has no success answer"
                );
                assert!(operation["summary"].is_string(), "{method} {path}");
                // Every {parameter} in the path is declared.
                for part in path.split('/').filter(|p| p.starts_with('{')) {
                    let name = part.trim_matches(['{', '}']);
                    let declared = operation["parameters"].as_array().is_some_and(|ps| {
                        ps.iter().any(|p| p["name"] == name && p["in"] == "path")
                    });
                    assert!(declared, "{method} {path}: {{{name}}} is not declared");
                }
            }
        }
    }
}
