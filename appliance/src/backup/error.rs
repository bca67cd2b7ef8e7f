//! Why a command to the backup service (prepare, eject, list copies, restore) did not
//! happen: one variant per thing the user can act on, each with a stable kind for the
//! page and a message that says what to do.

use super::mount::StickError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("No backup stick is plugged in: plug in the stick that holds your backup.")]
    NoStick,
    /// Prepare was asked for a stick that was not offered for preparing.
    #[error("The stick that is plugged in does not need preparing.")]
    NothingToPrepare,
    /// The stick is plugged in but holds nothing to read (empty, or waiting to be
    /// prepared).
    #[error(
        "The stick that is plugged in holds no plugnode backup (it is empty): plug in the \
         stick that holds your backup."
    )]
    NothingToRestore,
    /// Ejected (or written in snapshot mode) and unmounted: it must be plugged in again.
    #[error("The stick is ejected: pull it out and plug it in again to use it.")]
    Ejected,
    #[error("The stick is busy ({0}): wait a moment, then try again.")]
    Busy(String),
    /// Preparing refused: the stick holds data (perhaps a stick that is not plugnode's).
    #[error(
        "The stick is not empty ({0}): plugnode prepares only an empty stick. Use another \
         stick, or empty it on a computer first."
    )]
    NotEmpty(String),
    #[error(
        "The stick did not answer in time ({0}): it may be failing. Pull it out and plug it \
         in again, or use another stick."
    )]
    TimedOut(String),
    /// Mounting, unmounting or preparing failed (I/O, a damaged file system, …).
    #[error(
        "The stick could not be used: {0}. Pull it out and plug it in again, or use another \
         stick."
    )]
    StickFailed(String),
    /// This box has no way to mount sticks (the reason names the fix).
    #[error("{0}")]
    NoAccess(String),
    #[error("The backup service has stopped: restart the box.")]
    Stopped,
}

impl BackupError {
    /// What a stick's own failure means for the command that met it.
    pub fn from_stick(err: StickError) -> BackupError {
        match err {
            StickError::Busy(why) => BackupError::Busy(why),
            StickError::NotEmpty(why) => BackupError::NotEmpty(why),
            StickError::TimedOut(why) => BackupError::TimedOut(why),
            StickError::Empty | StickError::DamagedPlugnodeStick(_) | StickError::Unusable(_) => {
                BackupError::StickFailed(err.to_string())
            }
        }
    }

    /// A stable kind for the web page and scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            BackupError::NoStick => "no_stick",
            BackupError::NothingToPrepare => "nothing_to_prepare",
            // The same kind as a restore that finds no backup on a readable stick.
            BackupError::NothingToRestore => "no_backup",
            BackupError::Ejected => "ejected",
            BackupError::Busy(_) => "stick_busy",
            BackupError::NotEmpty(_) => "not_empty",
            BackupError::TimedOut(_) => "timed_out",
            BackupError::StickFailed(_) => "stick_failed",
            BackupError::NoAccess(_) => "cannot_mount",
            BackupError::Stopped => "stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stick_failure_keeps_what_the_user_can_act_on() {
        let busy = BackupError::from_stick(StickError::Busy("in use".into()));
        assert_eq!(busy, BackupError::Busy("in use".into()));
        let slow = BackupError::from_stick(StickError::TimedOut("no answer".into()));
        assert_eq!(slow.kind(), "timed_out");
        let full = BackupError::from_stick(StickError::NotEmpty("it holds files".into()));
        assert_eq!(full.kind(), "not_empty");
        let broken = BackupError::from_stick(StickError::Unusable("cannot read it".into()));
        assert_eq!(
            broken.to_string(),
            "The stick could not be used: cannot read it. Pull it out and plug it in again, \
             or use another stick."
        );
    }
}
