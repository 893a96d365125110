//! The catalog port ([`Catalog`]) implemented by the SQL of the modules beside this one: each method hands
//! its call to the module that holds its queries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::*;
use crate::catalog::{
    AlbumPageQuery, AlbumSummary, AlbumUpsert, AlbumsResult, Authenticated, Blob, Catalog, JobInfo, JobQueue,
    JobStatus, LeaseRequest, Library, LibraryId, ListedPhoto, LoginRecord, Misplaced, MonthCount, NewSession,
    NewToken, Page, PendingQuery, PendingUpload, PhotoDetail, PhotoFilter, PhotoId, PhotoUpsert,
    RecordedUpload, ResourceType, Result, ResumableSave, ResumableUpload, Scope, Stats, SyncBatchResult,
    TagCount, TagKind, TimelineQuery, TokenId, TokenInfo, UploadLookup, UploadRecord, UploadTarget, User,
    UserId, WebSession,
};
use crate::catalog::{
    ChangesSince, PhotoChange, PhotoVersion, PurgeReport, RestoreReport, RestoreTarget, Retention,
};

#[async_trait]
impl Catalog for Adapter {
    async fn migrate(&self) -> Result<()> {
        self.run_migrations().await?;
        // Rows written before the search existed (or by bulk SQL) get their searchable words now.
        let folded = search::fold_backlog(self).await?;
        if folded > 0 {
            tracing::info!(folded, "folded the searchable text of existing photos");
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn create_user(&self, name: &str) -> Result<User> {
        auth::create_user(self, name).await
    }

    async fn find_user_by_name(&self, name: &str) -> Result<Option<User>> {
        auth::find_user_by_name(self, name).await
    }

    async fn create_token(&self, user_id: &UserId, scope: Scope, name: &str) -> Result<NewToken> {
        auth::create_token(self, user_id, scope, name).await
    }

    async fn authenticate(&self, plaintext: &str) -> Result<Option<Authenticated>> {
        auth::authenticate(self, plaintext).await
    }

    async fn find_token(&self, token_id: &TokenId) -> Result<Option<TokenInfo>> {
        auth::find_token(self, token_id).await
    }

    async fn list_tokens(&self, user_id: Option<&UserId>) -> Result<Vec<TokenInfo>> {
        auth::list_tokens(self, user_id).await
    }

    async fn revoke_token(&self, user_id: &UserId, token_id: &TokenId) -> Result<()> {
        auth::revoke_token(self, user_id, token_id).await
    }

    async fn login_record(&self, name: &str) -> Result<Option<LoginRecord>> {
        sessions::login_record(self, name).await
    }

    async fn set_password(&self, user_id: &UserId, password_hash: &str, now: DateTime<Utc>) -> Result<u64> {
        sessions::set_password(self, user_id, password_hash, now).await
    }

    async fn create_session(
        &self,
        user_id: &UserId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<NewSession> {
        sessions::create_session(self, user_id, now, expires_at).await
    }

    async fn authenticate_session(&self, secret: &str, now: DateTime<Utc>) -> Result<Option<WebSession>> {
        sessions::authenticate_session(self, secret, now).await
    }

    async fn revoke_session(&self, user_id: &UserId, session_id: &str, now: DateTime<Utc>) -> Result<()> {
        sessions::revoke_session(self, user_id, session_id, now).await
    }

    async fn web_key(&self, name: &str, candidate: &str) -> Result<String> {
        sessions::web_key(self, name, candidate).await
    }

    async fn ensure_library(&self, user_id: &UserId, library_key: &str) -> Result<Library> {
        photos::ensure_library(self, user_id, library_key).await
    }

    async fn library(&self, user_id: &UserId, library_key: &str) -> Result<Option<Library>> {
        photos::library(self, user_id, library_key).await
    }

    async fn sync_photos(
        &self,
        user_id: &UserId,
        library_id: &LibraryId,
        items: Vec<PhotoUpsert>,
    ) -> Result<SyncBatchResult> {
        photos::sync_photos(self, user_id, library_id, items).await
    }

    async fn replace_albums(
        &self,
        user_id: &UserId,
        library_id: &LibraryId,
        albums: Vec<AlbumUpsert>,
    ) -> Result<AlbumsResult> {
        albums::replace_albums(self, user_id, library_id, albums).await
    }

    async fn pending_uploads(&self, user_id: &UserId, query: &PendingQuery) -> Result<Page<PendingUpload>> {
        uploads::pending_uploads(self, user_id, query).await
    }

    async fn resource_for_upload(
        &self,
        user_id: &UserId,
        lookup: &UploadLookup,
    ) -> Result<Option<UploadTarget>> {
        uploads::resource_for_upload(self, user_id, lookup).await
    }

    async fn blob_by_sha(&self, user_id: &UserId, sha256: &str) -> Result<Option<Blob>> {
        uploads::blob_by_sha(self, user_id, sha256).await
    }

    async fn blob_by_key(&self, user_id: &UserId, key: &str) -> Result<Option<Blob>> {
        uploads::blob_by_key(self, user_id, key).await
    }

    async fn misplaced(&self, after: Option<(&PhotoId, ResourceType)>, limit: u32) -> Result<Vec<Misplaced>> {
        relocate::misplaced(self, after, limit).await
    }

    async fn repoint(&self, moved: &Misplaced, to_key: &str) -> Result<bool> {
        relocate::repoint(self, moved, to_key).await
    }

    async fn record_upload(&self, user_id: &UserId, upload: &UploadRecord) -> Result<RecordedUpload> {
        uploads::record_upload(self, user_id, upload).await
    }

    async fn record_upload_failure(
        &self,
        user_id: &UserId,
        photo_id: &PhotoId,
        resource: ResourceType,
        reason: &str,
    ) -> Result<()> {
        uploads::record_upload_failure(self, user_id, photo_id, resource, reason).await
    }

    async fn stats(&self, user_id: &UserId, recent_since: DateTime<Utc>) -> Result<Stats> {
        stats::stats(self, user_id, recent_since).await
    }

    async fn version(&self, user_id: &UserId) -> Result<i64> {
        let mut conn = self.pool().acquire().await?;
        current_version(&mut conn, user_id).await
    }

    async fn list_photos(&self, user_id: &UserId, query: &TimelineQuery) -> Result<Vec<ListedPhoto>> {
        web::list_photos(self, user_id, query).await
    }

    async fn explain_timeline(&self, user_id: &UserId, query: &TimelineQuery) -> Result<String> {
        web::explain_timeline(self, user_id, query).await
    }

    async fn month_counts(&self, user_id: &UserId, filter: &PhotoFilter) -> Result<Vec<MonthCount>> {
        search::month_counts(self, user_id, filter).await
    }

    async fn explain_months(&self, user_id: &UserId, filter: &PhotoFilter) -> Result<String> {
        search::explain_months(self, user_id, filter).await
    }

    async fn tag_counts(&self, user_id: &UserId, kind: TagKind) -> Result<Vec<TagCount>> {
        search::tag_counts(self, user_id, kind).await
    }

    async fn list_albums(&self, user_id: &UserId, album_id: Option<&str>) -> Result<Vec<AlbumSummary>> {
        web::list_albums(self, user_id, album_id).await
    }

    async fn album_photos(&self, user_id: &UserId, query: &AlbumPageQuery) -> Result<Vec<ListedPhoto>> {
        web::album_photos(self, user_id, query).await
    }

    async fn photo(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<PhotoDetail>> {
        web::photo(self, user_id, photo_id).await
    }

    async fn listed_photo(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<ListedPhoto>> {
        web::listed_photo(self, user_id, photo_id).await
    }

    async fn lease_jobs(&self, user_id: &UserId, request: &LeaseRequest) -> Result<Vec<JobInfo>> {
        jobs::lease_jobs(self, user_id, request).await
    }

    async fn job(&self, user_id: &UserId, job_id: &str) -> Result<Option<JobInfo>> {
        jobs::job(self, user_id, job_id).await
    }

    async fn job_queues(&self) -> Result<Vec<JobQueue>> {
        jobs::job_queues(self).await
    }

    async fn complete_job(
        &self,
        user_id: &UserId,
        job_id: &str,
        result: &serde_json::Value,
    ) -> Result<JobStatus> {
        jobs::complete_job(self, user_id, job_id, result).await
    }

    async fn fail_job(
        &self,
        user_id: &UserId,
        job_id: &str,
        error: &str,
        max_failures: u32,
        retry_after_ms: i64,
    ) -> Result<JobStatus> {
        jobs::fail_job(self, user_id, job_id, error, max_failures, retry_after_ms).await
    }

    // History and trash (issue 12)

    async fn photo_history(&self, user_id: &UserId, photo_id: &PhotoId) -> Result<Option<Vec<PhotoVersion>>> {
        history::photo_history(self, user_id, photo_id).await
    }

    async fn photo_changes(
        &self,
        user_id: &UserId,
        since: &ChangesSince,
        limit: u32,
    ) -> Result<Vec<PhotoChange>> {
        history::photo_changes(self, user_id, since, limit).await
    }

    async fn restore(
        &self,
        user_id: &UserId,
        target: &RestoreTarget,
        as_of: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RestoreReport> {
        restore::restore(self, user_id, target, as_of, now).await
    }

    async fn purge(&self, retention: Retention, now: DateTime<Utc>) -> Result<PurgeReport> {
        history::purge(self, retention, now).await
    }

    async fn gc_take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        gc::take_lease(self, name, holder, now, until).await
    }

    async fn gc_release_lease(&self, name: &str, holder: &str) -> Result<()> {
        gc::release_lease(self, name, holder).await
    }

    async fn gc_users(&self) -> Result<Vec<UserId>> {
        gc::users(self).await
    }

    async fn gc_referenced_keys(&self, user_id: &UserId) -> Result<std::collections::HashSet<String>> {
        gc::referenced_keys(self, user_id).await
    }

    async fn gc_referenced_among(
        &self,
        user_id: &UserId,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        let mut conn = self.pool().acquire().await?;
        gc::referenced_among(&mut conn, user_id, keys).await
    }

    async fn gc_recorded_among(
        &self,
        user_id: &UserId,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        gc::recorded_among(self, user_id, keys).await
    }

    async fn gc_release_unreferenced(&self, user_id: &UserId, keys: &[String]) -> Result<Vec<String>> {
        gc::release_unreferenced(self, user_id, keys).await
    }

    async fn resumable_insert(&self, upload: &ResumableUpload) -> Result<()> {
        resumable::insert(self, upload).await
    }

    async fn resumable_get(&self, user_id: &UserId, id: &str) -> Result<Option<ResumableUpload>> {
        resumable::get(self, user_id, id).await
    }

    async fn resumable_hold(
        &self,
        user_id: &UserId,
        id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<ResumableUpload>> {
        resumable::hold(self, user_id, id, holder, now, until).await
    }

    async fn resumable_save(&self, save: &ResumableSave<'_>) -> Result<bool> {
        resumable::save(self, save).await
    }

    async fn resumable_release(&self, id: &str, holder: &str) -> Result<()> {
        resumable::release(self, id, holder).await
    }

    async fn resumable_delete(&self, id: &str) -> Result<()> {
        resumable::delete(self, id).await
    }

    async fn resumable_idle(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ResumableUpload>> {
        resumable::idle(self, before, now, limit).await
    }
}
