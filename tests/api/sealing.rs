//! DKIM private keys are sealed at rest (issue 8, item 6): the database
//! holds only ciphertext bound to the domain, keys stored in clear before
//! sealing are sealed at start, and a process with another key refuses to
//! start rather than fail every send.

use serde_json::json;
use tern::sealing::{SealingKey, is_sealed};
use tern::state::AppState;

use crate::helpers::{spawn_app, test_secrets_key};

async fn stored_key(app: &crate::helpers::TestApp, id: uuid::Uuid) -> Vec<u8> {
    sqlx::query_scalar("SELECT dkim_private_key FROM domains WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn dkim_keys_are_stored_sealed_and_old_rows_are_sealed_at_start() {
    let app = spawn_app().await;
    let t = app.live_tenant("ann@example.com", "shop.test").await;
    let sealing = SealingKey::load(&app.settings.secrets).unwrap();

    // What the API stored is sealed under this key and bound to the row.
    let stored = stored_key(&app, t.domain_id).await;
    assert!(is_sealed(&stored) && sealing.sealed_here(&stored));
    let plain = sealing.open(&stored, t.domain_id.as_bytes()).unwrap();
    assert_eq!(plain.expose()[0], 0x30, "PKCS#8 DER inside");
    assert!(sealing.open(&stored, uuid::Uuid::nil().as_bytes()).is_err());
    let sent = app
        .send(
            &t.key,
            &json!({"from": "a@shop.test", "to": "b@example.org", "text": "hi"}),
        )
        .await;
    let source = app.source(&t.key, sent["id"].as_str().unwrap()).await;
    assert!(String::from_utf8_lossy(&source).contains("DKIM-Signature: v=1; a=ed25519-sha256"));

    // A row from before sealing holds the key in clear: the next start seals it.
    sqlx::query("UPDATE domains SET dkim_private_key = $2 WHERE id = $1")
        .bind(t.domain_id)
        .bind(plain.expose())
        .execute(&app.db)
        .await
        .unwrap();
    AppState::new(app.db.clone(), app.settings.clone()).await.unwrap();
    let resealed = stored_key(&app, t.domain_id).await;
    assert!(sealing.sealed_here(&resealed), "the clear key was not sealed");
    assert_eq!(
        sealing.open(&resealed, t.domain_id.as_bytes()).unwrap().expose(),
        plain.expose()
    );

    // A process given another key would sign nothing: it does not start.
    let mut other = app.settings.clone();
    other.secrets.key = Some(test_secrets_key().into());
    let Err(err) = AppState::new(app.db.clone(), other).await else {
        panic!("started with the wrong secrets key");
    };
    assert!(format!("{err:#}").contains("another key"), "{err:#}");
    assert_eq!(
        stored_key(&app, t.domain_id).await,
        resealed,
        "a failed start changed the row"
    );

    // A process given no key at all does not make one of its own while
    // keys are sealed (it would lock every domain out).
    let mut keyless = app.settings.clone();
    let key_file = std::env::temp_dir().join(format!("tern-no-key-{}", uuid::Uuid::new_v4()));
    keyless.secrets.key = None;
    keyless.secrets.key_file = key_file.clone();
    let Err(err) = AppState::new(app.db.clone(), keyless.clone()).await else {
        panic!("started without the installation's key");
    };
    assert!(format!("{err:#}").contains("sealed"), "{err:#}");
    assert!(!key_file.exists(), "a key file was made");
    // A worker's state holds no key and needs none.
    let worker = AppState::without_sealing(app.db.clone(), keyless).await.unwrap();
    assert!(worker.sealing().is_err());
    assert!(!key_file.exists());
}
