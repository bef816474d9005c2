//! One problem in the configuration, found while loading or checking it.

/// One problem in the configuration: where (file:line, or settings key) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub at: String,
    pub message: String,
}

impl ConfigIssue {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}
