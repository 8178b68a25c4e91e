//! Argon2id password hashing and HS256 JSON Web Tokens.

use std::cell::RefCell;
use std::collections::HashSet;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use chrono::Utc;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use application::{AccessToken, Caller, HashError, PasswordHasher, TokenError, TokenService, Verified};
use domain::{Password, Role, User, UserId};

use crate::settings::Argon2Settings;

/// Argon2id with the configured parameters, hashes in PHC format (parameters travel with each
/// hash, so they can be raised later and old hashes still verify).
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl Argon2Hasher {
    pub fn new(settings: Argon2Settings) -> Result<Self, HashError> {
        let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
            .map_err(|e| HashError::caused("invalid Argon2 parameters", e.to_string()))?;
        Ok(Self { params })
    }
}

thread_local! {
    /// Argon2's working memory (`m_cost` KiB), kept from one hash to the next by the threads
    /// that asked for it (`Some`): the hashing pool's. Allocating it per hash (as `argon2`'s
    /// `PasswordHasher` does) maps and unmaps 19 MiB for every login: the page faults and the
    /// unmapping take the process's memory-map lock, and with hashing threads at idle priority
    /// the request threads then waited for them (a get-order's p99 tripled during a login
    /// storm). Every other thread (`None`, the default) allocates per hash and frees at once,
    /// so a hash made elsewhere (the login's dummy hash at start, db-admin) keeps nothing.
    static MEMORY: RefCell<Option<Vec<Block>>> = const { RefCell::new(None) };
}

/// Makes this thread keep its Argon2 memory from one hash to the next, and frees what it kept so
/// far. For threads that call it whenever they run out of work: the hashing pool calls it at
/// start and each time its queue is empty, so that an idle service holds no hashing memory.
pub fn keep_hash_memory() {
    MEMORY.with_borrow_mut(|memory| *memory = Some(Vec::new()));
}

/// `argon2`'s `hash_password_into`, on this thread's kept memory if it keeps any.
fn compute(argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    let blocks = argon2.params().block_count();
    MEMORY.with_borrow_mut(|kept| match kept {
        Some(memory) => {
            if memory.len() < blocks {
                memory.resize(blocks, Block::default());
            }
            argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        }
        None => argon2.hash_password_into(password, salt, out),
    })
}

/// As `argon2`'s `PasswordHasher::hash_password`: a random 16-byte salt, a 32-byte output,
/// the PHC string with algorithm, version and parameters.
fn hash_with(algorithm: Algorithm, version: Version, params: &Params, password: &[u8]) -> Result<String, HashError> {
    let error = |e: &dyn std::fmt::Display| HashError::caused("could not make a hash", e.to_string());
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    compute(&argon2, password, &salt, &mut out).map_err(|e| error(&e))?;
    let hash = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(params).map_err(|e| error(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| error(&e))?),
        hash: Some(Output::new(&out).map_err(|e| error(&e))?),
    };
    Ok(hash.to_string())
}

/// The algorithm, version and parameters of a stored PHC string.
fn parse_stored(hash: &str) -> Result<(PasswordHash, Algorithm, Version, Params), HashError> {
    let parsed = PasswordHash::new(hash).map_err(|e| HashError::caused("unreadable stored hash", e.to_string()))?;
    let params =
        Params::try_from(&parsed).map_err(|e| HashError::caused("unreadable stored hash parameters", e.to_string()))?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str())
        .map_err(|e| HashError::caused("unreadable stored hash algorithm", e.to_string()))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| HashError::caused("unreadable stored hash version", e.to_string()))?
        .unwrap_or_default();
    Ok((parsed, algorithm, version, params))
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &Password) -> Result<String, HashError> {
        hash_with(Algorithm::Argon2id, Version::V0x13, &self.params, password.expose().as_bytes())
    }

    fn dummy_like(&self, stored: &str) -> Result<String, HashError> {
        let (_, algorithm, version, params) = parse_stored(stored)?;
        hash_with(algorithm, version, &params, Uuid::now_v7().as_bytes())
    }

    /// As `argon2`'s `PasswordVerifier`: the stored hash's own algorithm, version and
    /// parameters, and a constant-time comparison (`Output`'s `==`).
    fn verify(&self, password: &Password, hash: &str) -> Result<Verified, HashError> {
        let (parsed, algorithm, version, stored) = parse_stored(hash)?;
        let matches = match (&parsed.salt, &parsed.hash) {
            (Some(salt), Some(expected)) => {
                let mut out = vec![0u8; expected.len()];
                let argon2 = Argon2::new(algorithm, version, stored.clone());
                compute(&argon2, password.expose().as_bytes(), salt.as_ref(), &mut out).is_ok()
                    && Output::new(&out).is_ok_and(|computed| computed == *expected)
            }
            _ => false,
        };
        let needs_rehash = algorithm != Algorithm::Argon2id
            || version != Version::V0x13
            || stored.m_cost() != self.params.m_cost()
            || stored.t_cost() != self.params.t_cost()
            || stored.p_cost() != self.params.p_cost();
        Ok(Verified { matches, needs_rehash })
    }
}

/// The claims of our access tokens.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
    jti: String,
}

/// HS256 tokens: signed with a secret of at least 32 bytes; issuer, audience, expiry and
/// algorithm are all checked on the way in.
pub struct JwtTokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: u64,
}

impl std::fmt::Debug for JwtTokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtTokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A signing secret: the configured one, or random bytes for this run.
pub fn random_jwt_secret() -> SecretSlice<u8> {
    let mut bytes = vec![0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    SecretSlice::from(bytes)
}

impl JwtTokenService {
    pub fn new(secret: &SecretSlice<u8>, issuer: &str, audience: &str, ttl_seconds: u64) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.required_spec_claims =
            ["exp", "iat", "iss", "aud", "sub"].into_iter().map(String::from).collect::<HashSet<_>>();
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.expose_secret()),
            decoding: DecodingKey::from_secret(secret.expose_secret()),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_seconds,
        }
    }
}

impl TokenService for JwtTokenService {
    fn issue(&self, user: &User) -> Result<AccessToken, TokenError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id().to_string(),
            role: user.role().as_str().to_owned(),
            iat: now,
            exp: now + self.ttl_seconds as i64,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::now_v7().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Signing(Box::new(e)))?;
        Ok(AccessToken { token, expires_in_seconds: self.ttl_seconds })
    }

    fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid { reason: "signature, algorithm or claims", source: Some(Box::new(e)) },
            })?;
        let claims = data.claims;
        let user_id = Uuid::parse_str(&claims.sub)
            .map_err(|e| TokenError::Invalid { reason: "sub is not a user id", source: Some(Box::new(e)) })?;
        // The role is decided by the database at each request; a claim naming no role of ours
        // means a token we never issued (a leaked secret), and is refused.
        Role::parse(&claims.role)
            .map_err(|e| TokenError::Invalid { reason: "unknown role", source: Some(Box::new(e)) })?;
        Ok(Caller { user_id: UserId(user_id) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Email, PersonName};

    fn hasher(memory_kib: u32, iterations: u32) -> Argon2Hasher {
        Argon2Hasher::new(Argon2Settings { memory_kib, iterations, parallelism: 1 }).unwrap()
    }

    #[test]
    fn hashes_are_argon2id_phc_and_verify() {
        let h = hasher(1024, 1);
        let password = Password::parse_new("correct horse", None, None).unwrap();
        let hash = h.hash(&password).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_eq!(h.verify(&password, &hash).unwrap(), Verified { matches: true, needs_rehash: false });
        let wrong = Password::parse_new("wrong horse", None, None).unwrap();
        assert!(!h.verify(&wrong, &hash).unwrap().matches);
    }

    #[test]
    fn older_parameters_ask_for_a_rehash() {
        let password = Password::parse_new("correct horse", None, None).unwrap();
        let old = hasher(1024, 1).hash(&password).unwrap();
        let verified = hasher(2048, 2).verify(&password, &old).unwrap();
        assert_eq!(verified, Verified { matches: true, needs_rehash: true });
    }

    /// Our hashing on kept memory must agree with the `argon2` crate's own PHC hashing and
    /// verification, both ways, and with memory left over from a bigger or different hash.
    #[test]
    fn agrees_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let password = Password::parse_new("correct horse", None, None).unwrap();
        let wrong = Password::parse_new("wrong horse", None, None).unwrap();
        // Keep memory on this thread, as a hashing thread does, and leave a bigger, dirty
        // buffer behind first.
        keep_hash_memory();
        hasher(4096, 1).hash(&wrong).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(1024, 2, 1, None).unwrap());
        let theirs = reference.hash_password(password.expose().as_bytes()).unwrap().to_string();
        let ours = hasher(1024, 2).hash(&password).unwrap();
        assert_eq!(
            hasher(1024, 2).verify(&password, &theirs).unwrap(),
            Verified { matches: true, needs_rehash: false }
        );
        assert!(!hasher(1024, 2).verify(&wrong, &theirs).unwrap().matches);
        assert!(reference.verify_password(password.expose().as_bytes(), ours.as_str()).is_ok());
        assert!(reference.verify_password(wrong.expose().as_bytes(), ours.as_str()).is_err());
        // Memory released in between changes nothing.
        keep_hash_memory();
        assert!(hasher(1024, 2).verify(&password, &ours).unwrap().matches);
    }

    /// Only a thread that called `keep_hash_memory` keeps memory after a hash; any other
    /// thread (the startup dummy hash, db-admin) holds none afterwards.
    #[test]
    fn only_threads_that_release_keep_memory() {
        let kept = || MEMORY.with_borrow(|memory| memory.as_ref().map(Vec::len));
        let password = Password::parse_new("correct horse", None, None).unwrap();
        let other = std::thread::spawn({
            let password = password.clone();
            move || {
                hasher(1024, 1).hash(&password).unwrap();
                kept()
            }
        });
        assert_eq!(other.join().unwrap(), None);
        let pool_like = std::thread::spawn(move || {
            keep_hash_memory();
            hasher(1024, 1).hash(&password).unwrap();
            let after_hash = kept();
            keep_hash_memory();
            (after_hash, kept())
        });
        assert_eq!(pool_like.join().unwrap(), (Some(1024), Some(0)));
    }

    /// A hash with another algorithm, version or output length still verifies, and asks for a
    /// rehash; a hash without salt or output never matches.
    #[test]
    fn foreign_hashes_verify_by_their_own_parameters() {
        use argon2::password_hash::PasswordHasher as _;
        let password = Password::parse_new("correct horse", None, None).unwrap();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::new(512, 1, 2, Some(64)).unwrap());
        let hash = argon2i.hash_password(password.expose().as_bytes()).unwrap().to_string();
        assert!(hash.starts_with("$argon2i$v=16$m=512,t=1,p=2$"), "{hash}");
        assert_eq!(hasher(1024, 1).verify(&password, &hash).unwrap(), Verified { matches: true, needs_rehash: true });
        let no_output = hash.rsplit_once('$').unwrap().0;
        assert!(!hasher(1024, 1).verify(&password, no_output).unwrap().matches);
    }

    /// The stand-in hash for unknown emails costs what the stored hashes cost: their
    /// algorithm, version and parameters, not today's.
    #[test]
    fn dummy_hashes_take_the_parameters_of_a_stored_one() {
        use argon2::password_hash::PasswordHasher as _;
        let password = Password::parse_new("correct horse", None, None).unwrap();
        let stored = hasher(1024, 1).hash(&password).unwrap();
        let dummy = hasher(8192, 3).dummy_like(&stored).unwrap();
        assert!(dummy.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{dummy}");
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::new(512, 2, 1, None).unwrap());
        let foreign = argon2i.hash_password(b"x").unwrap().to_string();
        assert!(hasher(8192, 3).dummy_like(&foreign).unwrap().starts_with("$argon2i$v=16$m=512,t=2,p=1$"));
        assert!(!hasher(8192, 3).verify(&password, &dummy).unwrap().matches);
    }

    fn user(role: Role) -> User {
        User::new(
            UserId(Uuid::now_v7()),
            Email::parse("a@example.com").unwrap(),
            PersonName::parse("Ana").unwrap(),
            role,
            Utc::now(),
        )
    }

    #[test]
    fn tokens_round_trip_and_carry_every_claim() {
        let secret = random_jwt_secret();
        let tokens = JwtTokenService::new(&secret, "comanda", "comanda-api", 60);
        let u = user(Role::Waiter);
        let token = tokens.issue(&u).unwrap();
        assert_eq!(tokens.verify(&token.token).unwrap(), Caller { user_id: u.id() });
        let claims = jsonwebtoken::dangerous::insecure_decode_claims::<serde_json_claims::Value>(&token.token).unwrap();
        for claim in ["sub", "role", "iat", "exp", "iss", "aud", "jti"] {
            assert!(claims.0.contains_key(claim), "missing {claim}");
        }
    }

    #[test]
    fn other_issuers_audiences_and_keys_are_refused() {
        let secret = random_jwt_secret();
        let u = user(Role::Admin);
        let token = JwtTokenService::new(&secret, "comanda", "comanda-api", 60).issue(&u).unwrap().token;
        assert!(JwtTokenService::new(&secret, "other", "comanda-api", 60).verify(&token).is_err());
        assert!(JwtTokenService::new(&secret, "comanda", "other", 60).verify(&token).is_err());
        assert!(JwtTokenService::new(&random_jwt_secret(), "comanda", "comanda-api", 60).verify(&token).is_err());
    }

    /// A claims map without pulling serde_json into this crate.
    mod serde_json_claims {
        use std::collections::BTreeMap;

        #[derive(Debug, serde::Deserialize)]
        pub struct Value(pub BTreeMap<String, serde::de::IgnoredAny>);
    }
}
