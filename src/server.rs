//! Start-up of `palisade serve`: network, keys, database, HTTP listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};

use crate::api::tezos::{AuthorizedKeys, TezosState, read_authorized_keys};
use crate::api::{self, AppState};
use crate::chain::eth2::network::NetworkConfig;
use crate::config::ServeConfig;
use crate::keys::{KeyRegistry, Keys, Reloader};
use crate::logging;

/// Everything `serve` prepared, before the listener starts.
pub struct Prepared {
    /// Shared state of the handlers.
    pub state: AppState,
    /// State of the Tezos handlers, when the Tezos listener is to start.
    pub tezos: Option<TezosState>,
    /// Milliseconds spent loading keys.
    pub key_load_ms: u128,
}

/// Loads the network, the keys (in parallel, off the async threads) and opens the database,
/// registering every loaded key in it.
///
/// # Errors
/// A message for an unknown network or an unreachable database; key failures are not errors
/// (they are counted in `/healthcheck`).
pub async fn prepare(config: &ServeConfig) -> Result<Prepared, String> {
    let network = NetworkConfig::from_name_or_path(&config.network).map_err(|e| e.to_string())?;
    let sources = config.keys.clone();
    let started = Instant::now();
    let keys = tokio::task::spawn_blocking(move || KeyRegistry::load(&sources))
        .await
        .map_err(|e| format!("key loading failed: {e}"))?;
    let key_load_ms = started.elapsed().as_millis();
    tracing::info!(
        keys = keys.len(),
        tezos_keys = keys.tezos_len(),
        errors = keys.errors().len(),
        elapsed_ms = key_load_ms as u64,
        "keys loaded"
    );
    let store = crate::protection::open(
        &config.slashing_protection_db_url,
        config.slashing_protection_db_pool_size,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some((epochs_to_keep, interval)) = config.pruning {
        let (store, slots_per_epoch) = (store.clone(), network.slots_per_epoch);
        tokio::spawn(async move {
            loop {
                match store.prune(epochs_to_keep, slots_per_epoch).await {
                    Ok(s) => tracing::info!(
                        blocks = s.blocks,
                        attestations = s.attestations,
                        "pruned slashing-protection records"
                    ),
                    Err(e) => {
                        tracing::warn!(reason = %e, "pruning failed; will retry at the next interval")
                    }
                }
                tokio::time::sleep(interval).await;
            }
        });
    }
    if let Some(retention) = config.audit_retention {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                let before = crate::protection::audit::now_ms() - retention.as_millis() as i64;
                match store.prune_audit(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "pruned audit records past retention"),
                    Err(e) => {
                        tracing::warn!(reason = %e, "audit pruning failed; will retry in an hour")
                    }
                }
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
    }
    store
        .register_validators(&keys.public_keys())
        .await
        .map_err(|e| e.to_string())?;
    crate::metrics::METRICS.set_keys(&keys);
    let keys = Arc::new(Keys::new(keys));
    let reloader = Arc::new(Reloader::new(
        config.keys.clone(),
        keys.clone(),
        store.clone(),
    ));
    let tezos = if config.tezos.explicitly_enabled
        || config.tezos.sockets_enabled()
        || keys.current().tezos_len() > 0
    {
        let authorized_keys = if config.tezos.require_authentication {
            let path = config
                .tezos
                .authorized_keys
                .as_deref()
                .ok_or("--tezos-require-authentication needs --tezos-authorized-keys FILE")?;
            Some(Arc::new(AuthorizedKeys::new(read_authorized_keys(path)?)))
        } else {
            None
        };
        Some(TezosState {
            keys: keys.clone(),
            store: store.clone(),
            magic_bytes: config.tezos.magic_bytes.clone(),
            allow_list_known_keys: config.tezos.allow_list_known_keys,
            authorized_keys,
            order: Default::default(),
        })
    } else {
        None
    };
    Ok(Prepared {
        state: AppState {
            keys,
            store,
            network: Arc::new(network),
            reloader: Some(reloader),
        },
        tezos,
        key_load_ms,
    })
}

/// Binds a server on an address, with TLS when a rustls configuration is given.
macro_rules! bind {
    ($server:expr, $addr:expr, $tls:expr $(,)?) => {{
        let server = $server;
        match $tls {
            None => server.bind($addr),
            Some(config) => server.bind_rustls_0_23($addr, config.clone()),
        }
    }};
}

/// Binds the eth2 listener (and the Tezos and metrics listeners when configured) and serves
/// until SIGINT/SIGTERM, over TLS when `--tls-cert-file` is given. Prints `palisade eth2 API
/// listening on http(s)://ADDR`, `palisade tezos API listening on …` and `palisade metrics
/// listening on …` once bound (tests read them for port 0).
///
/// # Errors
/// The bind or server error, or a TLS file that cannot be used.
pub async fn serve(config: &ServeConfig, prepared: Prepared) -> std::io::Result<()> {
    let tls = match &config.tls {
        None => None,
        Some(settings) => Some(
            crate::tls::server_config(settings)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        ),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // The binary-protocol sockets are bound first: a path or port that cannot be used fails
    // the start before any listener is announced.
    let sockets = match &prepared.tezos {
        Some(tezos) => octez_sockets(&config.tezos, tezos.clone())?,
        None => None,
    };
    let state = prepared.state;
    if let Some(reloader) = state.reloader.clone() {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        actix_web::rt::spawn(async move {
            while hangup.recv().await.is_some() {
                if reloader.start() {
                    tracing::info!("SIGHUP: reloading keys");
                } else {
                    tracing::warn!("SIGHUP: a key reload is already running");
                }
            }
        });
    }
    let access_log = config.access_log;
    let hosts = web::Data::new(config.host_allowlist.clone());
    let keymanager = match &config.key_manager_token_file {
        None => None,
        Some(file) => {
            let token = Arc::new(
                crate::api::keymanager::ApiToken::load_or_create(file)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            );
            let dir = config.keys.key_config_path.clone().unwrap_or_default();
            tracing::info!(token_file = %file.display(), "Keymanager API enabled");
            Some((
                web::Data::from(token.clone()),
                web::Data::new(crate::api::keymanager::KeymanagerState {
                    token,
                    key_config_dir: dir,
                }),
            ))
        }
    };
    let cors_origins = config.cors_origins.clone();
    let (eth2_hosts, eth2_cors) = (hosts.clone(), cors_origins.clone());
    let eth2_guard = web::Data::new(api::RequestGuard::eth2(&cors_origins));
    let server = bind!(
        HttpServer::new(move || {
            // Outermost first on the way in (`wrap`: later is outer): access log, Host
            // check, cross-site guard (Origin, admin routes, JSON), CORS headers, routes.
            let mut app = App::new()
                .app_data(eth2_hosts.clone())
                .app_data(eth2_guard.clone())
                .wrap(crate::tls::cors(&eth2_cors))
                .wrap(from_fn(api::request_guard))
                .wrap(from_fn(crate::tls::host_guard))
                .wrap(Condition::new(access_log, from_fn(logging::access_log)));
            if let Some((token, km)) = &keymanager {
                app = app
                    .app_data(token.clone())
                    .configure(api::keymanager::configure(km.clone()));
            }
            app.configure(api::configure(state.clone()))
        }),
        (config.http_listen_host.as_str(), config.http_listen_port),
        tls.as_ref(),
    )?;
    let addrs: Vec<SocketAddr> = server.addrs();
    for a in &addrs {
        tracing::info!(%a, "eth2 API listening");
        println!("palisade eth2 API listening on {scheme}://{a}");
    }
    let mut servers = vec![server.run()];
    if let Some((host, port)) = &config.metrics {
        let metrics = bind!(
            HttpServer::new(|| {
                // No Host allowlist (Prometheus scrapes by any name), but a request without a
                // usable Host header is refused.
                App::new()
                    .wrap(from_fn(crate::tls::host_guard))
                    .configure(crate::metrics::configure)
            })
            .workers(1),
            (host.as_str(), *port),
            tls.as_ref(),
        )?;
        for a in metrics.addrs() {
            tracing::info!(%a, "metrics listening");
            println!("palisade metrics listening on {scheme}://{a}");
        }
        servers.push(metrics.run());
    }
    let Some(tezos) = prepared.tezos else {
        return futures_util::future::try_join_all(servers)
            .await
            .map(|_| ());
    };
    // The Tezos listener has no admin routes; its Content-Type rule is src/api/tezos.rs's.
    let tezos_guard = web::Data::new(api::RequestGuard::new(&cors_origins, &[], false));
    let tezos_server = bind!(
        HttpServer::new(move || {
            App::new()
                .app_data(hosts.clone())
                .app_data(tezos_guard.clone())
                .wrap(crate::tls::cors(&cors_origins))
                .wrap(from_fn(api::request_guard))
                .wrap(from_fn(crate::tls::host_guard))
                .wrap(Condition::new(access_log, from_fn(logging::access_log)))
                .configure(api::tezos::configure(tezos.clone()))
        }),
        (config.tezos.listen_host.as_str(), config.tezos.listen_port),
        tls.as_ref(),
    )?;
    for a in tezos_server.addrs() {
        tracing::info!(%a, "tezos API listening");
        println!("palisade tezos API listening on {scheme}://{a}");
    }
    servers.push(tezos_server.run());
    let served = futures_util::future::try_join_all(servers).await;
    if let Some(s) = sockets {
        s.shutdown();
    }
    served.map(|_| ())
}

/// Binds and starts the octez binary-protocol listeners that are configured (TCP, Unix
/// socket), printing `palisade tezos socket listening on tcp://ADDR` and
/// `… on unix://PATH`.
fn octez_sockets(
    config: &crate::config::TezosConfig,
    state: TezosState,
) -> std::io::Result<Option<crate::transport::octez_socket::Listeners>> {
    use crate::transport::octez_socket;
    if !config.sockets_enabled() {
        return Ok(None);
    }
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let tcp = match &config.tcp {
        None => None,
        Some((host, port)) => {
            let l = octez_socket::bind_tcp(host, *port).map_err(invalid)?;
            let a = l.local_addr()?;
            tracing::info!(%a, "tezos binary signer protocol listening (tcp)");
            println!("palisade tezos socket listening on tcp://{a}");
            Some(l)
        }
    };
    let unix = match &config.unix_socket {
        None => None,
        Some(path) => {
            let l = octez_socket::bind_unix(path, config.unix_socket_group.as_deref())
                .map_err(invalid)?;
            tracing::info!(path = %path.display(), "tezos binary signer protocol listening (unix)");
            println!(
                "palisade tezos socket listening on unix://{}",
                path.display()
            );
            Some((l, path.clone()))
        }
    };
    octez_socket::spawn(state, tcp, unix).map(Some)
}
