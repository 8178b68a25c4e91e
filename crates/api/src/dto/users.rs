//! Bodies of the authentication and user endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use application::{NewUser, StaffMember};
use domain::{Email, LocationId, Password, PersonName, Role};

use super::Fields;
use crate::problem::FieldError;

/// Log in with JSON.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(value_type = String, required = true, example = "admin@comanda.local")]
    pub email: Option<String>,
    #[schema(value_type = String, required = true, format = Password, example = "a long passphrase")]
    pub password: Option<String>,
}

/// Log in with the OAuth2 password flow (what Swagger UI's Authorize button sends).
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginForm {
    /// The email.
    #[schema(value_type = String, required = true)]
    pub username: Option<String>,
    #[schema(value_type = String, required = true, format = Password)]
    pub password: Option<String>,
    /// `password` when present.
    #[schema(value_type = String)]
    pub grant_type: Option<String>,
}

impl LoginRequest {
    /// The email and the password, both present.
    pub fn parse(self) -> Result<(String, String), Vec<FieldError>> {
        credentials("email", self.email, self.password)
    }
}

impl LoginForm {
    pub fn parse(self) -> Result<(String, String), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.grant_type.as_deref().is_some_and(|g| g != "password") {
            errors.push(FieldError::new("grant_type", "must be password"));
        }
        match credentials("username", self.username, self.password) {
            Ok(pair) if errors.is_empty() => Ok(pair),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }
}

fn credentials(
    email_field: &str,
    email: Option<String>,
    password: Option<String>,
) -> Result<(String, String), Vec<FieldError>> {
    let mut fields = Fields::default();
    let email = fields.required(email_field, email.as_deref(), |s| Ok::<_, String>(s.to_owned()));
    let password = fields.required("password", password.as_deref(), |s| Ok::<_, String>(s.to_owned()));
    fields.finish(email.zip(password))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 1800)]
    pub expires_in: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleDto {
    Admin,
    Manager,
    Waiter,
    Kitchen,
}

impl From<Role> for RoleDto {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::Manager => Self::Manager,
            Role::Waiter => Self::Waiter,
            Role::Kitchen => Self::Kitchen,
        }
    }
}

/// The most locations one request assigns a user to.
pub const MAX_LOCATION_IDS: usize = 1000;

/// Location ids as a request gives them: at most [`MAX_LOCATION_IDS`].
fn location_ids(ids: Vec<Uuid>) -> Result<Vec<LocationId>, String> {
    if ids.len() > MAX_LOCATION_IDS {
        return Err(format!("must name at most {MAX_LOCATION_IDS} locations"));
    }
    Ok(ids.into_iter().map(LocationId).collect())
}

/// A new staff user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateUserRequest {
    #[schema(schema_with = super::patterns::email_schema, required = true)]
    pub email: Option<String>,
    #[schema(schema_with = super::patterns::person_name_schema, required = true)]
    pub name: Option<String>,
    #[schema(schema_with = super::patterns::password_schema, required = true)]
    pub password: Option<String>,
    /// `waiter` when absent.
    #[schema(value_type = RoleDto)]
    pub role: Option<String>,
    #[schema(schema_with = super::patterns::new_user_location_ids_schema)]
    #[serde(default, deserialize_with = "super::non_null")]
    pub location_ids: Option<Vec<Uuid>>,
}

impl CreateUserRequest {
    pub fn parse(self) -> Result<NewUser, Vec<FieldError>> {
        let mut fields = Fields::default();
        let email = fields.required("email", self.email.as_deref(), Email::parse);
        let name = fields.required("name", self.name.as_deref(), PersonName::parse);
        let password = fields.required("password", self.password.as_deref(), |raw| {
            Password::parse_new(raw, email.as_ref(), name.as_ref())
        });
        let role = match self.role.as_deref() {
            None => Some(Role::Waiter),
            Some(raw) => fields.check("role", Role::parse(raw)),
        };
        let locations = fields.optional("location_ids", self.location_ids, location_ids);
        let user = match (email, name, password, role, locations) {
            (Some(email), Some(name), Some(password), Some(role), Some(locations)) => {
                Some(NewUser { email, name, password, role, locations })
            }
            _ => None,
        };
        fields.finish(user)
    }
}

/// The locations a user works in, replacing the current ones (an empty list takes every
/// location away).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetLocationsRequest {
    #[schema(schema_with = super::patterns::set_location_ids_schema, required = true)]
    pub location_ids: Option<Vec<Uuid>>,
}

impl SetLocationsRequest {
    pub fn parse(self) -> Result<Vec<LocationId>, Vec<FieldError>> {
        let mut fields = Fields::default();
        let ids = match self.location_ids {
            None => {
                fields.push(FieldError::new("location_ids", "is required"));
                None
            }
            Some(ids) => fields.check("location_ids", location_ids(ids)),
        };
        fields.finish(ids)
    }
}

/// A staff user. Never contains the password or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    #[schema(example = "ana@example.com")]
    pub email: String,
    #[schema(example = "Ana López")]
    pub name: String,
    pub role: RoleDto,
    /// The locations the user works in (every location for an admin).
    pub location_ids: Vec<Uuid>,
    #[serde(serialize_with = "crate::dto::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<&StaffMember> for UserResponse {
    fn from(member: &StaffMember) -> Self {
        let user = &member.user;
        Self {
            id: user.id().0,
            email: user.email().to_string(),
            name: user.name().to_string(),
            role: user.role().into(),
            location_ids: member.locations.iter().map(|l| l.0).collect(),
            created_at: user.created_at(),
        }
    }
}
