//! The browser front end from `web-ui/`, embedded into the binary at build time.

use actix_web::{web, HttpResponse};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../web-ui/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../web-ui/style.css"),
    },
    Asset {
        path: "/ui.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/ui.js"),
    },
    Asset {
        path: "/wallet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/wallet.js"),
    },
    Asset {
        path: "/lightning.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/lightning.js"),
    },
    Asset {
        path: "/channels.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/channels.js"),
    },
    Asset {
        path: "/payments.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/payments.js"),
    },
    Asset {
        path: "/backup.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/backup.js"),
    },
    Asset {
        path: "/pairing.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/pairing.js"),
    },
    Asset {
        path: "/usb-restore.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/usb-restore.js"),
    },
    Asset {
        path: "/update.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../web-ui/update.js"),
    },
];

pub fn routes(config: &mut web::ServiceConfig) {
    for asset in ASSETS {
        config.route(
            asset.path,
            web::get().to(move || async move {
                HttpResponse::Ok()
                    .content_type(asset.content_type)
                    .insert_header(("Cache-Control", "no-cache"))
                    .body(asset.body)
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A file added to `web-ui/` but not listed here would be a 404 in the browser.
    #[test]
    fn every_file_of_the_web_ui_is_served() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-ui");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".md") || super::super::trust::FILES.contains(&name.as_str()) {
                continue;
            }
            let path = if name == "index.html" {
                "/".to_string()
            } else {
                format!("/{name}")
            };
            assert!(
                ASSETS.iter().any(|asset| asset.path == path),
                "web-ui/{name} is not in assets.rs"
            );
        }
    }

    /// Every module the page imports is served.
    #[test]
    fn every_imported_module_is_served() {
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            for (at, from) in asset.body.match_indices("from \"./") {
                let rest = &asset.body[at + from.len()..];
                let module = format!("/{}", &rest[..rest.find('"').unwrap()]);
                assert!(
                    ASSETS.iter().any(|a| a.path == module),
                    "{} imports {module}, which is not served",
                    asset.path
                );
            }
        }
    }
}
