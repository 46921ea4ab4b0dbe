"""The store's schema as numbered migrations; migration N brings a store from version N-1 to N."""

from __future__ import annotations

from pathlib import Path

DEFAULT_STORE = Path("kt.duckdb")

# Never edit a released migration; add the next number.
MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE datasets (
        name VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, origin VARCHAR, filters JSON NOT NULL,
        fingerprint VARCHAR NOT NULL, n_users INTEGER, n_items INTEGER, n_interactions BIGINT,
        created_at TIMESTAMP NOT NULL);
    CREATE TABLE items (dataset VARCHAR, item_id VARCHAR, fields JSON, PRIMARY KEY (dataset, item_id));
    CREATE TABLE users (dataset VARCHAR, user_id VARCHAR, fields JSON, PRIMARY KEY (dataset, user_id));
    CREATE TABLE interactions (dataset VARCHAR, user_id VARCHAR, item_id VARCHAR, rating DOUBLE,
        timestamp DOUBLE);
    CREATE TABLE splits (split_id VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, ratios VARCHAR NOT NULL,
        seed INTEGER NOT NULL, created_at TIMESTAMP NOT NULL);
    CREATE TABLE split_rows (split_id VARCHAR, user_id VARCHAR, item_id VARCHAR, part TINYINT);
    CREATE TABLE knowledge_sets (dataset VARCHAR, name VARCHAR, entity VARCHAR NOT NULL,
        dim INTEGER NOT NULL, n_vectors INTEGER NOT NULL, source VARCHAR NOT NULL, method VARCHAR,
        params JSON NOT NULL, parent VARCHAR, created_at TIMESTAMP NOT NULL, PRIMARY KEY (dataset, name));
    CREATE TABLE knowledge_vectors (dataset VARCHAR, set_name VARCHAR, entity_id VARCHAR, vector FLOAT[]);
    CREATE TABLE runs (name VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, split_id VARCHAR NOT NULL,
        model VARCHAR NOT NULL, knowledge VARCHAR, config JSON NOT NULL, config_hash VARCHAR NOT NULL,
        seed INTEGER NOT NULL, status VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP, summary JSON, versions JSON, error VARCHAR);
    CREATE TABLE epochs (run VARCHAR, phase VARCHAR, epoch INTEGER, model_loss DOUBLE, recon_loss DOUBLE,
        valid_metric DOUBLE, aligned_rows BIGINT, masked_rows BIGINT, seconds DOUBLE,
        PRIMARY KEY (run, phase, epoch));
    CREATE TABLE evaluations (eval_id VARCHAR PRIMARY KEY, run VARCHAR NOT NULL, settings JSON NOT NULL,
        n_users INTEGER, seconds DOUBLE, created_at TIMESTAMP NOT NULL);
    CREATE TABLE eval_metrics (eval_id VARCHAR, slice VARCHAR, metric VARCHAR, k INTEGER, value DOUBLE,
        n_users INTEGER);
    CREATE TABLE eval_users (eval_id VARCHAR, user_id VARCHAR, n_train INTEGER, metric VARCHAR,
        k INTEGER, value DOUBLE);
    """,
    2: """
    CREATE TABLE llm_responses (key VARCHAR, version INTEGER, backend VARCHAR NOT NULL, model VARCHAR NOT NULL,
        params JSON NOT NULL, prompt_hash VARCHAR NOT NULL, text VARCHAR NOT NULL, tokens_in INTEGER,
        tokens_out INTEGER, seconds DOUBLE, finish_reason VARCHAR, created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (key, version));
    CREATE TABLE profile_sets (dataset VARCHAR, name VARCHAR, entity VARCHAR NOT NULL, template VARCHAR NOT NULL,
        template_hash VARCHAR NOT NULL, rules JSON NOT NULL, backend VARCHAR NOT NULL, model VARCHAR NOT NULL,
        params JSON NOT NULL, n_profiles INTEGER NOT NULL, n_missing INTEGER NOT NULL,
        created_at TIMESTAMP NOT NULL, PRIMARY KEY (dataset, name));
    CREATE TABLE profiles (dataset VARCHAR, set_name VARCHAR, entity_id VARCHAR, response_key VARCHAR,
        response_version INTEGER);
    CREATE TABLE text_embeddings (encoder VARCHAR, text_hash VARCHAR, vector FLOAT[],
        PRIMARY KEY (encoder, text_hash));
    """,
    3: """
    ALTER TABLE splits ADD COLUMN method JSON;
    """,
    4: """
    ALTER TABLE runs ADD COLUMN owner JSON;
    """,
    5: """
    CREATE TABLE eval_samples (eval_id VARCHAR, user_id VARCHAR, item_id VARCHAR, label FLOAT, score DOUBLE);
    """,
    6: """
    ALTER TABLE eval_users ADD COLUMN slice VARCHAR DEFAULT 'all';
    """,
}
SCHEMA_VERSION = max(MIGRATIONS)
