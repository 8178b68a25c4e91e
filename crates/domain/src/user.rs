//! Staff users: who they are and what they may do. A user never changes after creation.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::text::{self, TextError};

/// A user's identifier (a UUID, time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why an email address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 254 characters long")]
    TooLong,
    #[error("must look like name@example.com")]
    Syntax,
}

/// An email address: trimmed, domain part lower-cased, compared without regard to case.
#[derive(Debug, Clone)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    /// Parses a new address with a deliberately plain check: one `@`; a local part of up to 64
    /// visible characters (no white space, controls, invisible or bidirectional characters, nor
    /// `"(),:;<>[\]`; no leading, trailing or doubled dot); and a domain of at least two
    /// dot-separated labels of ASCII letters, digits and inner hyphens (an internationalized
    /// domain in its `xn--` form, as DNS holds it: a look-alike Cyrillic `а` in a domain is
    /// refused). The address is composed (NFC) and trimmed, its domain lower-cased.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        Self::parse_with(raw, |c| c.is_ascii_alphanumeric())
    }

    /// Parses an address that may already be stored: the rule of [`Email::parse`], except that
    /// domain labels may hold any letters and digits (version 1 allowed them), so that an
    /// account made then still reads back and logs in.
    pub fn parse_existing(raw: &str) -> Result<Self, EmailError> {
        Self::parse_with(raw, char::is_alphanumeric)
    }

    fn parse_with(raw: &str, label_char: impl Fn(char) -> bool) -> Result<Self, EmailError> {
        let composed = text::compose(raw);
        let trimmed = composed.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = trimmed.split_once('@').ok_or(EmailError::Syntax)?;
        let local_ok = !local.is_empty()
            && local.chars().count() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(Self::local_char);
        let domain = domain.to_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.chars().count() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| label_char(c) || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(EmailError::Syntax);
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    /// Whether `c` may appear in a local part.
    fn local_char(c: char) -> bool {
        !c.is_control() && !text::is_invisible(c) && !text::is_bidi_control(c) && !Self::SPECIALS.contains(c)
    }

    /// The characters a local part may not hold besides controls and invisible ones.
    pub const SPECIALS: &str = "@\"(),:;<>[\\]";

    /// The key that makes addresses unique: the whole address case folded after compatibility
    /// normalization (see [`text::case_key`]).
    pub fn key(&self) -> String {
        text::case_key(&self.0)
    }

    /// The part before the `@`.
    fn local_part(&self) -> &str {
        self.0.split_once('@').map_or(self.0.as_str(), |(local, _)| local)
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Email {}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name: 2 to 100 characters after the text rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::normalize(raw, 2, 100).map(Self)
    }
}

impl AsRef<str> for PersonName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's job, which decides what they may do (see [`crate::permission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, in every location: staff, locations, reports.
    Admin,
    /// What a waiter may, plus reports and the decisions a floor manager takes, in their
    /// locations.
    Manager,
    /// Creates and serves orders in their locations.
    Waiter,
    /// A kitchen display: reads and bumps its locations' kitchen tickets.
    Kitchen,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: admin, manager, waiter, kitchen")]
pub struct RoleError;

impl Role {
    pub const ALL: [Role; 4] = [Self::Admin, Self::Manager, Self::Waiter, Self::Kitchen];

    pub fn parse(raw: &str) -> Result<Self, RoleError> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw).ok_or(RoleError)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Waiter => "waiter",
            Self::Kitchen => "kitchen",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least 8 characters long")]
    TooShort,
    #[error("must be at most 128 characters long")]
    TooLong,
    #[error("must contain visible characters")]
    Invisible,
    #[error("must not be the email address")]
    EqualsEmail,
    #[error("is one of the most common passwords; choose a longer phrase")]
    Common,
    #[error(
        "must not be the email, its name part, the user's name or the product's name, even with digits or symbols added"
    )]
    ContextSpecific,
}

/// The 30,000 most used passwords (zxcvbn's list, MIT, see `data/common-passwords.LICENSE.txt`),
/// lower-case, most common first.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| COMMON_PASSWORDS.lines().collect());
    &SET
}

/// The product's name: a password made of it is the first guess against this service.
const PRODUCT_NAME: &str = "comanda";

/// A plain-text password on its way to the hasher. It never prints and never serializes.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    /// Checks a new password by OWASP ASVS 5 (V6.2) and NIST SP 800-63B (5.1.1.2): 8 to 128
    /// characters, any characters (spaces included) but not only invisible ones; not one of
    /// the most common passwords; not the email address, its name part, the user's name or
    /// the product's name, nor one of those with digits or symbols around it. Comparisons
    /// ignore case and compatibility forms. The rule applies when a password is set: logging
    /// in with an older password is not refused ([`Password::candidate`]).
    pub fn parse_new(raw: &str, email: Option<&Email>, name: Option<&PersonName>) -> Result<Self, PasswordError> {
        let count = raw.chars().count();
        if count < Self::MIN_LEN {
            return Err(PasswordError::TooShort);
        }
        if count > Self::MAX_LEN {
            return Err(PasswordError::TooLong);
        }
        if raw.chars().all(text::is_invisible) {
            return Err(PasswordError::Invisible);
        }
        let folded = text::case_key(raw.trim());
        if email.is_some_and(|e| folded == e.key()) {
            return Err(PasswordError::EqualsEmail);
        }
        // Compared without case, accents or spaces, and also without the digits, symbols and
        // spaces around its letters: `Comanda2026!` is `comanda`, `password1` is `password`.
        let loose = text::loose_key(&folded);
        let core = loose.trim_matches(|c: char| !c.is_alphabetic());
        let common = common_passwords();
        if common.contains(folded.as_str()) || common.contains(loose.as_str()) || common.contains(core) {
            return Err(PasswordError::Common);
        }
        let mut context = vec![PRODUCT_NAME.to_owned()];
        if let Some(email) = email {
            context.push(text::loose_key(email.as_ref()));
            context.push(text::loose_key(email.local_part()));
        }
        if let Some(name) = name {
            context.push(text::loose_key(name.as_ref()));
        }
        if context.iter().any(|word| !word.is_empty() && (word == core || *word == loose)) {
            return Err(PasswordError::ContextSpecific);
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a password offered at login: no policy, only a bound on its size so that nobody
    /// makes the hasher chew on megabytes.
    pub fn candidate(raw: &str) -> Option<Self> {
        (raw.chars().count() <= Self::MAX_LEN).then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A staff user. Built once and never modified: there are no setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    id: UserId,
    email: Email,
    name: PersonName,
    role: Role,
    created_at: DateTime<Utc>,
}

impl User {
    pub fn new(id: UserId, email: Email, name: PersonName, role: Role, created_at: DateTime<Utc>) -> Self {
        Self { id, email, name, role, created_at }
    }

    pub fn id(&self) -> UserId {
        self.id
    }
    pub fn email(&self) -> &Email {
        &self.email
    }
    pub fn name(&self) -> &PersonName {
        &self.name
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_domain_lower_cased_but_local_part_kept() {
        let email = Email::parse("  Ana.Lopez@Example.COM ").unwrap();
        assert_eq!(email.as_ref(), "Ana.Lopez@example.com");
        assert_eq!(email.key(), "ana.lopez@example.com");
        assert_eq!(email, Email::parse("ana.lopez@example.com").unwrap());
    }

    #[test]
    fn email_syntax_is_checked() {
        for bad in [
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@exa mple.com",
            "a..b@example.com",
            "a@-x.com",
            "a@x..com",
            "a@b@c.com",
            "a\u{0}@x.com",
            "a\u{200b}@x.com",
            "\u{202e}moc.x@a",
            "\u{feff}a@x.com",
            "a\u{2800}@x.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Syntax), "{bad:?}");
        }
        assert_eq!(Email::parse("  "), Err(EmailError::Empty));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        assert!(Email::parse("o'brien+tag@sub.example.co.uk").is_ok());
        // New addresses have ASCII domains (look-alike letters refused); stored ones read back.
        assert_eq!(Email::parse("ana@ex\u{430}mple.com"), Err(EmailError::Syntax));
        assert_eq!(Email::parse("ana@españa.es"), Err(EmailError::Syntax));
        assert!(Email::parse("ana@xn--espaa-rta.es").is_ok());
        assert!(Email::parse_existing("ana@españa.es").is_ok());
        // Stored composed; keyed without case or compatibility forms.
        let decomposed = Email::parse("jose\u{301}@example.com").unwrap();
        assert_eq!(decomposed.as_ref(), "jos\u{e9}@example.com");
        assert_eq!(decomposed, Email::parse("JOSÉ@EXAMPLE.COM").unwrap());
        assert_eq!(Email::parse("strasse@example.com").unwrap(), Email::parse("STRAßE@example.com").unwrap());
    }

    #[test]
    fn password_policy() {
        let email = Email::parse("waiter@example.com").unwrap();
        let name = PersonName::parse("Ana López").unwrap();
        let check = |raw: &str| Password::parse_new(raw, Some(&email), Some(&name)).map(drop);
        assert_eq!(check("short"), Err(PasswordError::TooShort));
        assert_eq!(check(&"x".repeat(129)), Err(PasswordError::TooLong));
        assert_eq!(check("WAITER@example.com"), Err(PasswordError::EqualsEmail));
        assert!(Password::parse_new(&"ñ".repeat(128), Some(&email), None).is_ok());
        assert!(check("correct horse battery").is_ok());
        assert!(check("tres tristes tigres").is_ok());
    }

    #[test]
    fn passwords_that_look_empty_are_refused() {
        for raw in [
            "        ",
            "\u{200b}".repeat(8).as_str(),
            "\u{3164}\u{2800}\u{feff}\u{200b}\u{3164}\u{2800}\u{feff}\u{200b}",
        ] {
            assert_eq!(Password::parse_new(raw, None, None).map(drop), Err(PasswordError::Invisible), "{raw:?}");
        }
        // Spaces inside a passphrase are fine.
        assert!(Password::parse_new("  una frase larga  ", None, None).is_ok());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case_or_width() {
        assert!(common_passwords().len() >= 10_000);
        for raw in [
            "password",
            "12345678",
            "PassWord",
            "Password1",
            "qwertyuiop",
            "ｐａｓｓｗｏｒｄ",
            "iloveyou!",
            "pass word",
        ] {
            assert_eq!(Password::parse_new(raw, None, None).map(drop), Err(PasswordError::Common), "{raw:?}");
        }
    }

    #[test]
    fn context_specific_passwords_are_refused() {
        let email = Email::parse("maria.garcia@example.com").unwrap();
        let name = PersonName::parse("Lucía Fernández").unwrap();
        for raw in ["comanda2026", "Comanda!!", "maria.garcia", "MARIA.GARCIA99", "Lucía Fernández", "luciafernandez#1"]
        {
            assert_eq!(
                Password::parse_new(raw, Some(&email), Some(&name)).map(drop),
                Err(PasswordError::ContextSpecific),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn password_never_prints() {
        let password = Password::parse_new("s3cret-value", None, None).unwrap();
        assert!(!format!("{password:?}").contains("s3cret"));
    }

    #[test]
    fn roles_parse_exactly() {
        assert_eq!(Role::parse("admin"), Ok(Role::Admin));
        assert_eq!(Role::parse("waiter"), Ok(Role::Waiter));
        assert_eq!(Role::parse("manager"), Ok(Role::Manager));
        assert_eq!(Role::parse("kitchen"), Ok(Role::Kitchen));
        assert_eq!(Role::parse("Admin"), Err(RoleError));
    }
}
