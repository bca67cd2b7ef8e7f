//! The one shape of every JSON error the API answers:
//! `{"error": "what happened and what to do", "kind": "stable_kind", …}` with its status
//! code. Handlers return [`ApiError`]; the middlewares (`guard`, `trust`) and the 404/405
//! fallback build one too, so a script reads every refusal the same way.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error the API returns as JSON `{"error": …}` with a status code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Lets the web page show the right form.
    pub setup_required: bool,
    /// A stable error kind (e.g. "already_paid") for pages and scripts.
    pub kind: Option<String>,
    /// More fields for the page (e.g. the fee a liquidity provider asks).
    pub extra: Vec<(&'static str, serde_json::Value)>,
    /// Seconds to wait before trying again (`Retry-After`).
    pub retry_after: Option<u64>,
    /// More headers (e.g. `Allow` on a 405).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            setup_required: false,
            kind: None,
            extra: Vec::new(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    /// Adds a field to the JSON body.
    pub fn with_extra(mut self, key: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    /// Adds a stable kind (anything that serializes to a string).
    pub fn with_kind(mut self, kind: impl Serialize) -> Self {
        self.kind = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        self
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({ "error": self.message });
        if self.setup_required {
            body["setup_required"] = true.into();
        }
        if let Some(kind) = &self.kind {
            body["kind"] = kind.clone().into();
        }
        for (key, value) in &self.extra {
            body[*key] = value.clone();
        }
        let mut response = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            body["retry_after_secs"] = secs.into();
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        for (name, value) in &self.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ApiError) -> (HttpResponse<()>, serde_json::Value) {
        let (head, body) = error.error_response().into_parts();
        let body = actix_web::body::to_bytes(body).await.unwrap();
        (head, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn every_field_goes_into_the_one_body() {
        let error = ApiError {
            setup_required: true,
            retry_after: Some(3),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Wait.")
        }
        .with_kind("throttled")
        .with_extra("fee_msat", 1000)
        .with_header(header::ALLOW, HeaderValue::from_static("GET"));
        let (head, body) = answer(error).await;
        assert_eq!(head.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(head.headers().get(header::RETRY_AFTER).unwrap(), "3");
        assert_eq!(head.headers().get(header::ALLOW).unwrap(), "GET");
        assert_eq!(
            head.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        assert_eq!(
            body,
            serde_json::json!({
                "error": "Wait.",
                "kind": "throttled",
                "setup_required": true,
                "fee_msat": 1000,
                "retry_after_secs": 3,
            })
        );
    }

    #[tokio::test]
    async fn a_plain_error_has_only_its_message() {
        let (head, body) = answer(ApiError::new(StatusCode::NOT_FOUND, "Gone.")).await;
        assert_eq!(head.status(), StatusCode::NOT_FOUND);
        assert_eq!(body, serde_json::json!({ "error": "Gone." }));
    }
}
