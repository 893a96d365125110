-- Previews (issue 14): a thumbnail job now also makes a large preview (long edge 2048 px) from the same
-- decoded original and records it in its result as `preview`. Photos whose thumbnail was made before that
-- have a result without one: their thumbnail jobs are queued again, once, here. The worker keeps a thumbnail
-- already stored under the job's key (it reads its size rather than making it again) and makes only the
-- preview; the old result, and so the thumbnail in the web, stays until the new one replaces it. Jobs that
-- failed (parked) stay as they are: their original did not decode then either.
UPDATE icloud.jobs
SET state = 'queued', attempts = 0, failures = 0, last_error = NULL, lease_expires_at = NULL,
    available_at = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT,
    created_at = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT,
    updated_at = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT
WHERE kind = 'thumbnail' AND state = 'done'
  AND photo_id IN (
      SELECT e.photo_id FROM icloud.enrichments e
      WHERE e.kind = 'thumbnail' AND (e.result::jsonb -> 'preview' ->> 'key') IS NULL
  );
