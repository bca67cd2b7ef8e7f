//! How a request reaches the JSON API: each API module declares its routes once in
//! [`api_routes!`], which both registers them with actix and lists them in a table the
//! OpenAPI test compares with `openapi.json`; and how a request's JSON body is read, with
//! its size limit.

use super::error::ApiError;
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::web;

/// A route of the JSON API: an HTTP method and an actix path (`{id}` for a parameter,
/// as in OpenAPI).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
}

/// Body limit of the routes anyone may call (logging in, setting up): a password and a
/// code fit many times over, a flood of megabytes does not.
pub const SMALL_JSON: usize = 4 * 1024;
/// Body limit of everything else: 24 words, an invoice or an offer fit many times over.
pub const JSON_LIMIT: usize = 64 * 1024;

/// `api_routes! { pub fn routes, const ROUTES; POST "/api/x" limit SMALL_JSON => handler; … }`
/// defines `routes(config)`, which registers each route (with its own JSON limit when
/// given), and `ROUTES`, the table of them.
macro_rules! api_routes {
    ($vis:vis fn $register:ident, const $table:ident;
     $($method:ident $path:literal $(limit $limit:expr)? => $handler:expr;)*) => {
        // The demo's tables are read only in tests.
        #[allow(dead_code)]
        $vis const $table: &[$crate::web::routes::ApiRoute] = &[
            $($crate::web::routes::ApiRoute { method: stringify!($method), path: $path },)*
        ];

        $vis fn $register(config: &mut actix_web::web::ServiceConfig) {
            $(
                config.service(
                    actix_web::web::resource($path)
                        .guard(actix_web::guard::Method(actix_web::http::Method::$method))
                        $(.app_data(actix_web::web::JsonConfig::default().limit($limit)))?
                        .route(
                            actix_web::web::method(actix_web::http::Method::$method)
                                .to($handler),
                        ),
                );
            )*
        }
    };
}
pub(crate) use api_routes;

/// The methods the routes in `tables` serve on `path` (`{…}` in a route matches any one
/// segment), for a 405's `Allow`.
pub fn methods_of(path: &str, tables: &[&[ApiRoute]]) -> Vec<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut methods: Vec<&'static str> = tables
        .iter()
        .flat_map(|table| table.iter())
        .filter(|route| {
            let pattern: Vec<&str> = route.path.split('/').collect();
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p.starts_with('{') || p == s)
        })
        .map(|route| route.method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// A JSON body, or an answer that shows the expected shape (`shape`) and says what was
/// wrong; a body over the limit is 413.
pub fn json_body<T>(
    body: Result<web::Json<T>, actix_web::Error>,
    shape: &str,
) -> Result<T, ApiError> {
    body.map(web::Json::into_inner)
        .map_err(|err| match err.as_error::<JsonPayloadError>() {
            Some(
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. },
            ) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("That request is too large: this box takes at most {limit} bytes here."),
            )
            .with_kind("too_large"),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Send a JSON body like {shape} ({err})."),
            )
            .with_kind("invalid_input"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_methods_of_a_path_fill_allow() {
        const TABLE: &[ApiRoute] = &[
            ApiRoute {
                method: "GET",
                path: "/api/pairing/connections/{id}",
            },
            ApiRoute {
                method: "DELETE",
                path: "/api/pairing/connections/{id}",
            },
            ApiRoute {
                method: "POST",
                path: "/api/pairing/connections",
            },
        ];
        assert_eq!(
            methods_of("/api/pairing/connections/abc", &[TABLE]),
            ["DELETE", "GET"]
        );
        assert_eq!(methods_of("/api/pairing/connections", &[TABLE]), ["POST"]);
        assert!(methods_of("/api/pairing/connections/abc/x", &[TABLE]).is_empty());
        assert!(methods_of("/api/nothing", &[TABLE]).is_empty());
    }
}
