//! BLS secret keys read from AWS Secrets Manager and held in memory
//! ([`crate::keys::MemoryKey`]).
//!
//! Web3Signer's key config, one secret:
//!
//! ```yaml
//! type: aws-secret
//! keyType: BLS
//! authenticationMode: SPECIFIED      # Web3Signer's default when accessKeyId is given
//! region: eu-west-1
//! accessKeyId: AKIA…
//! secretAccessKey: …                 # or secretAccessKeyFile / secretAccessKeyEnv
//! secretName: validators/key-1
//! endpointOverride: …                # optional
//! ```
//!
//! palisade's bulk type loads every secret whose name starts with a prefix and that carries
//! the given tags (`ListSecrets`, then `BatchGetSecretValue` 20 secrets per call,
//! `concurrency` calls in flight):
//!
//! ```yaml
//! type: aws-secrets-bulk
//! region: eu-west-1
//! namePrefix: validators/            # optional
//! tags: { role: validator }          # optional: every tag must match
//! concurrency: 8                     # batch calls in flight (1–64, default 8)
//! # credentials: see the module above (the standard chain by default)
//! ```
//!
//! A secret's string holds one hex BLS secret key (`0x` optional), or several, one per line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use futures_util::StreamExt;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AwsConfig, Connection, observe};
use crate::keys::LoadError;
use crate::keys::backend::keystore::check_key_type;
use crate::keys::backend::{Backend, KeyLoad, LoadContext, LoadedKey, base_dir, parse};
use crate::keys::remote::{self, RemoteError};
use crate::protection::audit::Chain;

/// The metrics label of Secrets Manager calls.
const BACKEND: &str = "aws-secrets";

/// Secrets per `BatchGetSecretValue` call (the API's maximum).
const BATCH: usize = 20;

/// The `aws-secret` backend (Web3Signer's key config).
pub struct AwsSecret;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OneConfig {
    #[serde(default)]
    key_type: Option<String>,
    #[serde(flatten)]
    aws: AwsConfig,
    secret_name: String,
}

impl Backend for AwsSecret {
    fn kind(&self) -> &'static str {
        "aws-secret"
    }
    fn fields_hint(&self) -> &'static str {
        "region, secretName, authenticationMode, accessKeyId, secretAccessKey, endpointOverride"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        None
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let mut c: OneConfig = parse(text, self)?;
        check_key_type(c.key_type.as_deref())?;
        if c.aws.authentication_mode.is_none() && c.aws.access_key_id.is_some() {
            c.aws.authentication_mode = Some("SPECIFIED".into());
        }
        let name = c.secret_name.trim().to_string();
        if name.is_empty() {
            return Err("secretName must name a secret".into());
        }
        Ok(Box::new(SecretsLoad {
            file: file.to_path_buf(),
            connection: c.aws.connection(base_dir(file))?,
            source: Source::One(name),
            concurrency: 1,
        }))
    }
}

/// The `aws-secrets-bulk` backend.
pub struct AwsSecretsBulk;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkConfig {
    #[serde(flatten)]
    aws: AwsConfig,
    #[serde(default)]
    name_prefix: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    concurrency: Option<usize>,
}

impl Backend for AwsSecretsBulk {
    fn kind(&self) -> &'static str {
        "aws-secrets-bulk"
    }
    fn fields_hint(&self) -> &'static str {
        "region, namePrefix, tags, concurrency, authenticationMode, endpointOverride, timeoutMs"
    }
    fn remote(&self) -> bool {
        true
    }
    fn known_fields(&self) -> Option<Vec<&'static str>> {
        let mut fields = vec!["type", "namePrefix", "tags", "concurrency"];
        fields.extend(super::AWS_FIELDS);
        Some(fields)
    }
    fn prepare(&self, text: &str, file: &Path) -> Result<Box<dyn KeyLoad>, String> {
        let c: BulkConfig = parse(text, self)?;
        let concurrency = c.concurrency.unwrap_or(8);
        if !(1..=64).contains(&concurrency) {
            return Err("concurrency must be between 1 and 64".into());
        }
        Ok(Box::new(SecretsLoad {
            file: file.to_path_buf(),
            connection: c.aws.connection(base_dir(file))?,
            source: Source::Filtered {
                prefix: c.name_prefix.filter(|p| !p.is_empty()),
                tags: c.tags,
            },
            concurrency,
        }))
    }
}

/// Which secrets to read.
enum Source {
    One(String),
    Filtered {
        prefix: Option<String>,
        tags: BTreeMap<String, String>,
    },
}

struct SecretsLoad {
    file: PathBuf,
    connection: Connection,
    source: Source,
    concurrency: usize,
}

use remote::FetchedSecret as Fetched;

/// The ARNs and names of every secret matching `prefix` and `tags`, paged 100 at a time.
async fn list(
    client: &aws_sdk_secretsmanager::Client,
    prefix: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, RemoteError> {
    let mut filters = Vec::new();
    let filter = |key: FilterNameStringType, values: Vec<String>| {
        Filter::builder().key(key).set_values(Some(values)).build()
    };
    if let Some(p) = prefix {
        filters.push(filter(FilterNameStringType::Name, vec![p.to_string()]));
    }
    if !tags.is_empty() {
        filters.push(filter(
            FilterNameStringType::TagKey,
            tags.keys().cloned().collect(),
        ));
    }
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = observe(
            BACKEND,
            "list_secrets",
            client
                .list_secrets()
                .set_filters(Some(filters.clone()))
                .max_results(100)
                .set_next_token(token.take())
                .send(),
        )
        .await?;
        for s in page.secret_list() {
            let (Some(arn), Some(name)) = (s.arn(), s.name()) else {
                continue;
            };
            // ListSecrets matches a name *prefix* only at word boundaries and tags as ORs:
            // keep exactly what the config asks for.
            if prefix.is_some_and(|p| !name.starts_with(p)) {
                continue;
            }
            let has = |k: &str, v: &str| {
                s.tags()
                    .iter()
                    .any(|t| t.key() == Some(k) && t.value() == Some(v))
            };
            if tags.iter().all(|(k, v)| has(k, v)) {
                found.push((arn.to_string(), name.to_string()));
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

/// Reads up to [`BATCH`] secrets in one `BatchGetSecretValue` call.
async fn batch(client: aws_sdk_secretsmanager::Client, ids: Vec<(String, String)>) -> Vec<Fetched> {
    let names: BTreeMap<String, String> = ids.iter().cloned().collect();
    let answer = observe(
        BACKEND,
        "batch_get_secret_value",
        client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.iter().map(|(arn, _)| arn.clone()).collect()))
            .send(),
    )
    .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return ids.into_iter().map(|(_, n)| (n, Err(e.clone()))).collect(),
    };
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for v in answer.secret_values() {
        let name = v
            .arn()
            .and_then(|a| names.get(a).cloned())
            .or_else(|| v.name().map(str::to_string))
            .unwrap_or_default();
        seen.insert(name.clone());
        let value = match v.secret_string() {
            Some(s) => Ok(Zeroizing::new(s.to_string())),
            None => Err(RemoteError("the secret has no SecretString".into())),
        };
        out.push((name, value));
    }
    for e in answer.errors() {
        let name = e
            .secret_id()
            .and_then(|a| names.get(a).cloned())
            .unwrap_or_else(|| e.secret_id().unwrap_or_default().to_string());
        seen.insert(name.clone());
        let why = format!(
            "{} {}",
            e.error_code().unwrap_or("error"),
            e.message().unwrap_or_default()
        );
        out.push((name, Err(RemoteError(why.trim().to_string()))));
    }
    for (_, name) in ids {
        if !seen.contains(&name) {
            out.push((name, Err(RemoteError("not in the batch answer".into()))));
        }
    }
    out
}

impl KeyLoad for SecretsLoad {
    fn identity(&self) -> (Option<Chain>, Option<String>) {
        (Some(Chain::Eth2), None)
    }

    fn load(self: Box<Self>, context: &LoadContext<'_>) -> Result<LoadedKey, LoadError> {
        let file = self.file.clone();
        remote::exactly_one(&file, self.load_all(context))
    }

    fn load_all(self: Box<Self>, _context: &LoadContext<'_>) -> Vec<Result<LoadedKey, LoadError>> {
        let started = Instant::now();
        let error = |reason: String| LoadError {
            file: self.file.clone(),
            reason,
        };
        let single = matches!(self.source, Source::One(_));
        let connection = self.connection.clone();
        let concurrency = self.concurrency;
        let (source_one, filters) = match &self.source {
            Source::One(n) => (Some(n.clone()), None),
            Source::Filtered { prefix, tags } => (None, Some((prefix.clone(), tags.clone()))),
        };
        let fetched: Result<Vec<Fetched>, RemoteError> = remote::block_on(async move {
            let client = aws_sdk_secretsmanager::Client::new(&connection.sdk_config(3).await?);
            if let Some(name) = source_one {
                let value = observe(
                    BACKEND,
                    "get_secret_value",
                    client.get_secret_value().secret_id(&name).send(),
                )
                .await
                .and_then(|a| {
                    a.secret_string()
                        .map(|s| Zeroizing::new(s.to_string()))
                        .ok_or_else(|| RemoteError("the secret has no SecretString".into()))
                });
                return Ok(vec![(name, value)]);
            }
            let (prefix, tags) = filters.expect("a filtered source");
            let ids = list(&client, prefix.as_deref(), &tags).await?;
            let chunks: Vec<Vec<(String, String)>> = ids.chunks(BATCH).map(<[_]>::to_vec).collect();
            Ok(futures_util::stream::iter(chunks)
                .map(|ids| batch(client.clone(), ids))
                .buffer_unordered(concurrency)
                .flat_map(futures_util::stream::iter)
                .collect()
                .await)
        });
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => return vec![Err(error(e.to_string()))],
        };
        let region = self.connection.describe();
        remote::bls_keys(
            &self.file,
            single,
            fetched,
            |name| format!("aws-secrets {region} {name}"),
            "aws secrets",
            started,
        )
    }
}
