//! The box's answer to a question that needs a finger on it (KEY2 confirms a withdrawal or
//! an update), as the JSON API's answer: only a press on the box lets the request go on.

use super::error::ApiError;
use crate::display::{DisplayError, PairingAnswer};
use crate::text::capitalized;
use actix_web::http::StatusCode;

/// What the box asked about, in the words its refusals use.
pub(super) struct Asked {
    /// The thing shown on the screen: "the withdrawal", "the update".
    pub what: &'static str,
    /// What did not happen without the press: "nothing was sent".
    pub nothing_done: &'static str,
}

/// `Ok` when KEY2 confirmed it (or the panel turned out to have no keys: the password was
/// enough); otherwise the refusal the page shows: 409 for KEY3 or no press, 503 when the
/// screen could not ask.
pub(super) fn confirmed(
    answer: Result<PairingAnswer, DisplayError>,
    asked: Asked,
) -> Result<(), ApiError> {
    let Asked { what, nothing_done } = asked;
    let refused = |kind: &str, message: String| {
        Err(ApiError::new(StatusCode::CONFLICT, message).with_kind(kind))
    };
    match answer {
        Ok(PairingAnswer::Confirmed) | Err(DisplayError::NoKeys) => Ok(()),
        Ok(PairingAnswer::TimedOut) => refused(
            "not_confirmed_on_box",
            format!(
                "Nobody pressed KEY2 on the box within 2 minutes: {nothing_done}. Try again \
                 and press KEY2 on the box when it shows {what}."
            ),
        ),
        Ok(PairingAnswer::Refused) => refused(
            "refused_on_box",
            format!(
                "{} was refused on the box (KEY3, or the screen was needed for something \
                 else): {nothing_done}.",
                capitalized(what)
            ),
        ),
        Err(err) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The box's screen could not ask ({err}): {nothing_done}. Try again."),
        )
        .with_kind(err.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    const UPDATE: Asked = Asked {
        what: "the update",
        nothing_done: "nothing was installed",
    };

    fn refusal(answer: Result<PairingAnswer, DisplayError>) -> (u16, String) {
        let err = confirmed(answer, UPDATE).expect_err("refused");
        (err.status_code().as_u16(), err.to_string())
    }

    #[test]
    fn only_key2_or_a_box_without_keys_lets_the_request_go_on() {
        assert!(confirmed(Ok(PairingAnswer::Confirmed), UPDATE).is_ok());
        assert!(confirmed(Err(DisplayError::NoKeys), UPDATE).is_ok());
    }

    #[test]
    fn each_refusal_says_what_did_not_happen_and_what_to_do() {
        let (status, text) = refusal(Ok(PairingAnswer::Refused));
        assert_eq!(status, 409);
        assert!(
            text.starts_with("The update was refused on the box"),
            "{text}"
        );
        assert!(text.contains("nothing was installed"), "{text}");

        let (status, text) = refusal(Ok(PairingAnswer::TimedOut));
        assert_eq!(status, 409);
        assert!(
            text.contains("press KEY2 on the box when it shows the update"),
            "{text}"
        );

        let (status, text) = refusal(Err(DisplayError::Stopped));
        assert_eq!(status, 503);
        assert!(text.contains("nothing was installed. Try again."), "{text}");
    }
}
