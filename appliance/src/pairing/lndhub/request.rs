//! Reading what the apps send: the bearer token, a small body (JSON, or a form as the
//! reference also accepts), query parameters, and amounts in sat the way the apps write
//! them (BlueWallet sends `"amt": "1000"` as a string, Zeus a string or a number).

use super::error::LndhubError;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The largest body taken: an invoice with route hints and a memo fit with room to spare.
pub const MAX_BODY: usize = 8 * 1024;
/// Logins are 20 characters and passwords 24: anything much longer is not worth a look.
pub const MAX_LOGIN_CHARS: usize = 64;
pub const MAX_PASSWORD_CHARS: usize = 128;
/// 21 million bitcoin, in sat.
const MAX_SAT: u64 = 21_000_000 * 100_000_000;

/// The token in `Authorization: Bearer <token>`, if it looks like one of ours.
pub fn bearer(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let value = value.trim();
    let token = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map_or(value, |_| &value[7..])
        .trim();
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())).then_some(token)
}

/// The query parameters (a malformed query reads as none).
pub fn query(request: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// The body's fields: a JSON object or a form; empty when there is no body.
pub async fn fields(
    request: &HttpRequest,
    payload: web::Payload,
) -> Result<Map<String, Value>, LndhubError> {
    let too_large = || {
        LndhubError::bad_arguments(format!(
            "Bad arguments: the request is larger than {} KiB; send only the fields of the call.",
            MAX_BODY / 1024
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = match payload.to_bytes_limited(MAX_BODY).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return Err(LndhubError::bad_arguments(
                "Bad arguments: the request body could not be read; send it again.",
            ))
        }
        Err(_) => return Err(too_large()),
    };
    parse_fields(content_type(request), &body)
}

fn content_type(request: &HttpRequest) -> &str {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The fields of a body of `content_type`.
pub fn parse_fields(content_type: &str, body: &[u8]) -> Result<Map<String, Value>, LndhubError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        let text = std::str::from_utf8(body)
            .map_err(|_| LndhubError::bad_arguments("Bad arguments: the form is not UTF-8."))?;
        let form = web::Query::<HashMap<String, String>>::from_query(text)
            .map_err(|_| LndhubError::bad_arguments("Bad arguments: the form is malformed."))?;
        return Ok(form
            .into_inner()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(LndhubError::bad_arguments(
            "Bad arguments: send a JSON object, like {\"amt\": \"1000\", \"memo\": \"coffee\"}.",
        )),
    }
}

/// A text field; `None` when absent, null or empty.
pub fn text<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, LndhubError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim()).filter(|t| !t.is_empty())),
        Some(_) => Err(LndhubError::bad_arguments(format!(
            "Bad arguments: \"{name}\" must be text."
        ))),
    }
}

/// An amount in whole sat above 0, as a number or as digits in a string.
pub fn sat(fields: &Map<String, Value>, name: &str) -> Result<u64, LndhubError> {
    let wrong = || {
        LndhubError::bad_arguments(format!(
            "Bad arguments: \"{name}\" must be a whole number of sat above 0, like \"1000\"."
        ))
    };
    let amount = match fields.get(name) {
        Some(Value::Number(number)) => match (number.as_u64(), number.as_f64()) {
            (Some(whole), _) => whole,
            // 1000.0 is still 1000 sat; 1000.5 or -3 are not.
            (None, Some(float)) if float.fract() == 0.0 && float > 0.0 && float < 1e19 => {
                float as u64
            }
            _ => return Err(wrong()),
        },
        Some(Value::String(text)) => {
            let digits = text.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(wrong());
            }
            digits.parse::<u64>().map_err(|_| wrong())?
        }
        _ => return Err(wrong()),
    };
    if amount == 0 {
        return Err(wrong());
    }
    if amount > MAX_SAT {
        return Err(LndhubError::bad_arguments(format!(
            "Bad arguments: \"{name}\" is more than 21 million bitcoin."
        )));
    }
    Ok(amount)
}

/// An amount that may be left out: absent, null, empty or 0 mean "none" (BlueWallet sends
/// `"amount": 0` with every payment, the reference ignores it).
pub fn optional_sat(fields: &Map<String, Value>, name: &str) -> Result<Option<u64>, LndhubError> {
    let none = match fields.get(name) {
        None | Some(Value::Null) => true,
        Some(Value::Number(number)) => number.as_u64() == Some(0) || number.as_f64() == Some(0.0),
        Some(Value::String(text)) => matches!(text.trim(), "" | "0"),
        Some(_) => false,
    };
    if none {
        Ok(None)
    } else {
        sat(fields, name).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::lndhub::error::BAD_ARGUMENTS;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn amounts_arrive_as_strings_or_numbers() {
        assert_eq!(sat(&object(json!({"amt": "1000"})), "amt"), Ok(1000));
        assert_eq!(sat(&object(json!({"amt": " 21 "})), "amt"), Ok(21));
        assert_eq!(sat(&object(json!({"amt": 1000})), "amt"), Ok(1000));
        assert_eq!(sat(&object(json!({"amt": 1000.0})), "amt"), Ok(1000));
    }

    #[test]
    fn zero_negative_fractional_and_non_numeric_amounts_are_bad_arguments() {
        for bad in [
            json!({"amt": "0"}),
            json!({"amt": 0}),
            json!({"amt": -5}),
            json!({"amt": "-5"}),
            json!({"amt": 1.5}),
            json!({"amt": "1.5"}),
            json!({"amt": "abc"}),
            json!({"amt": "1e3"}),
            json!({"amt": ""}),
            json!({"amt": null}),
            json!({"amt": true}),
            json!({"amt": [1]}),
            json!({}),
            json!({"amt": "99999999999999999999999"}),
            json!({"amt": 2_100_000_000_000_001u64}),
        ] {
            let err = sat(&object(bad.clone()), "amt").unwrap_err();
            assert_eq!(err.code, BAD_ARGUMENTS, "{bad}");
            assert!(err.message.contains("\"amt\""), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn a_payment_amount_of_zero_means_none() {
        for none in [
            json!({}),
            json!({"amount": 0}),
            json!({"amount": "0"}),
            json!({"amount": null}),
        ] {
            assert_eq!(optional_sat(&object(none), "amount"), Ok(None));
        }
        assert_eq!(
            optional_sat(&object(json!({"amount": 50})), "amount"),
            Ok(Some(50))
        );
        assert!(optional_sat(&object(json!({"amount": -1})), "amount").is_err());
    }

    #[test]
    fn bodies_are_json_or_forms_and_may_be_empty() {
        assert!(parse_fields("application/json", b"").unwrap().is_empty());
        assert!(parse_fields("application/json", b"  \n")
            .unwrap()
            .is_empty());
        let fields = parse_fields("application/json", br#"{"login":"a","password":"b"}"#).unwrap();
        assert_eq!(fields["login"], "a");
        let form = parse_fields(
            "application/x-www-form-urlencoded; charset=utf-8",
            b"login=a&password=b%5Fc",
        )
        .unwrap();
        assert_eq!(form["password"], "b_c");
        for bad in [&b"{"[..], b"[1,2]", b"\"text\"", b"\xff\xfe"] {
            let err = parse_fields("application/json", bad).unwrap_err();
            assert_eq!(err.code, BAD_ARGUMENTS);
        }
    }

    #[test]
    fn text_fields_must_be_text() {
        let fields = object(json!({"invoice": " lnbc1 ", "memo": 5, "empty": ""}));
        assert_eq!(text(&fields, "invoice"), Ok(Some("lnbc1")));
        assert_eq!(text(&fields, "empty"), Ok(None));
        assert_eq!(text(&fields, "missing"), Ok(None));
        assert!(text(&fields, "memo").is_err());
    }

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header() {
        let token = "ab".repeat(32);
        let request = actix_web::test::TestRequest::default()
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_http_request();
        assert_eq!(bearer(&request), Some(token.as_str()));
        let request = actix_web::test::TestRequest::default()
            .insert_header(("Authorization", "Bearer undefined"))
            .to_http_request();
        assert_eq!(bearer(&request), None);
        let request = actix_web::test::TestRequest::default().to_http_request();
        assert_eq!(bearer(&request), None);
    }
}
