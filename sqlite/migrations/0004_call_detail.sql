-- The rarer facts of a call as one JSON object (NULL when it has none): the
-- upstream's response id, creation time and system fingerprint, the chunk
-- count of a stream, the upstream's error code and message, and the
-- captured tools and tool calls.
ALTER TABLE calls ADD COLUMN detail TEXT;
