//! Step 10 of the flow: the protected resource, each user's notes.
//!
//! Every query is scoped to the caller, the (`iss`, `sub`) of a token that
//! passed `validate.rs`; no route takes a user id from the request. So one
//! user can never read or delete another's note: a note of someone else's
//! is indistinguishable from one that does not exist (404 either way).
//!
//! | route | scope (RFC 6750 3.1, RFC 9700 2.3) |
//! | --- | --- |
//! | `GET /api/notes` | `notes:read` |
//! | `POST /api/notes` | `notes:write` |
//! | `DELETE /api/notes/{id}` | `notes:write` |
//!
//! Notes live in SQLite or PostgreSQL (`--database-url`), so they survive a
//! restart. Both go through sqlx's `Any` driver: each query is written once,
//! with `$1`-style placeholders that both bind by number; only the schema
//! differs (`schema/sqlite.sql`, `schema/postgres.sql`).

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};
use storage::{Database, Engine};

use crate::AppState;
use crate::caller::Caller;
use crate::error::ApiError;

pub const NOTES_READ: &str = "notes:read";
pub const NOTES_WRITE: &str = "notes:write";

/// Longest note, in characters (Unicode scalar values).
pub const MAX_NOTE_CHARS: usize = 1000;
/// Most notes one user may keep: storage per user is bounded too.
pub const MAX_NOTES_PER_USER: i64 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/notes", get(list_notes).post(create_note))
        .route("/api/notes/{id}", delete(delete_note))
}

/// A note as the API returns it.
#[derive(Serialize)]
pub struct Note {
    id: i64,
    text: String,
    /// RFC 3339, UTC, e.g. `2026-11-26T20:00:00Z`.
    created_at: String,
}

#[derive(Serialize)]
pub struct NoteList {
    notes: Vec<Note>,
}

#[derive(Deserialize)]
pub struct NewNote {
    text: String,
}

/// Note text that is neither blank nor longer than [`MAX_NOTE_CHARS`].
struct NoteText(String);

impl NoteText {
    fn parse(text: String) -> Result<Self, ApiError> {
        if text.trim().is_empty() {
            return Err(ApiError::InvalidRequest("text must not be empty"));
        }
        if text.chars().count() > MAX_NOTE_CHARS {
            return Err(ApiError::InvalidRequest(
                "text must be at most 1000 characters",
            ));
        }
        Ok(Self(text))
    }
}

/// `GET /api/notes`: the caller's notes, newest first.
#[tracing::instrument(name = "step10_list_notes", skip_all, fields(sub = %caller.0.sub))]
async fn list_notes(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<NoteList>, ApiError> {
    caller.require_scope(NOTES_READ)?;
    let rows = sqlx::query(
        "SELECT id, text, created_at FROM notes WHERE owner_iss = $1 AND owner_sub = $2 ORDER BY id DESC",
    )
    .bind(&caller.0.issuer)
    .bind(&caller.0.sub)
    .fetch_all(state.db.pool())
    .await?;
    let notes = rows.iter().map(note_from_row).collect::<Result<_, _>>()?;
    Ok(Json(NoteList { notes }))
}

/// `POST /api/notes` with `{"text": "..."}`: 201 and the new note.
#[tracing::instrument(name = "step10_create_note", skip_all, fields(sub = %caller.0.sub))]
async fn create_note(
    caller: Caller,
    State(state): State<AppState>,
    body: Result<Json<NewNote>, JsonRejection>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    caller.require_scope(NOTES_WRITE)?;
    let Json(body) =
        body.map_err(|_| ApiError::InvalidRequest("body must be JSON {\"text\": \"...\"}"))?;
    let text = NoteText::parse(body.text)?;

    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notes WHERE owner_iss = $1 AND owner_sub = $2")
            .bind(&caller.0.issuer)
            .bind(&caller.0.sub)
            .fetch_one(state.db.pool())
            .await?;
    if count >= MAX_NOTES_PER_USER {
        return Err(ApiError::InvalidRequest("at most 1000 notes per user"));
    }

    let row = sqlx::query(
        "INSERT INTO notes (owner_iss, owner_sub, text) VALUES ($1, $2, $3) RETURNING id, text, created_at",
    )
    .bind(&caller.0.issuer)
    .bind(&caller.0.sub)
    .bind(text.0)
    .fetch_one(state.db.pool())
    .await?;
    Ok((StatusCode::CREATED, Json(note_from_row(&row)?)))
}

/// `DELETE /api/notes/{id}`: 204, or 404 when the caller has no such note.
#[tracing::instrument(name = "step10_delete_note", skip_all, fields(sub = %caller.0.sub))]
async fn delete_note(
    caller: Caller,
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_scope(NOTES_WRITE)?;
    let Path(id) = id.map_err(|_| ApiError::InvalidRequest("note id must be an integer"))?;
    // The owner is part of the WHERE clause: another user's id deletes nothing.
    let deleted =
        sqlx::query("DELETE FROM notes WHERE id = $1 AND owner_iss = $2 AND owner_sub = $3")
            .bind(id)
            .bind(&caller.0.issuer)
            .bind(&caller.0.sub)
            .execute(state.db.pool())
            .await?
            .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

fn note_from_row(row: &AnyRow) -> Result<Note, sqlx::Error> {
    Ok(Note {
        id: row.try_get("id")?,
        text: row.try_get("text")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Open the database named by `--database-url` and create the schema.
pub async fn connect(database_url: &str) -> anyhow::Result<Database> {
    let db = Database::open(database_url).await?;
    let schema = match db.engine() {
        Engine::Sqlite => include_str!("../schema/sqlite.sql"),
        Engine::Postgres => include_str!("../schema/postgres.sql"),
    };
    sqlx::raw_sql(schema).execute(db.pool()).await?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_text_is_bounded() {
        assert!(NoteText::parse("hello".into()).is_ok());
        assert!(NoteText::parse("é".repeat(MAX_NOTE_CHARS)).is_ok());
        assert!(NoteText::parse("x".repeat(MAX_NOTE_CHARS + 1)).is_err());
        assert!(NoteText::parse(" \n\t ".into()).is_err());
        assert!(NoteText::parse(String::new()).is_err());
    }
}
