-- Parley PostgreSQL schema, version 8.
--
-- GENERATED from src/store/postgres-migrations.ts: do not edit by hand. Regenerate with
--   node src/store/postgres-migrations.ts > src/store/postgres-schema.sql
-- (test/store/postgres.test.ts fails when the two differ).
--
-- Parley creates and upgrades this schema by itself at startup, and `parley migrate --config FILE`
-- does the same on demand. Apply this file by hand only when the gateway's role must not own the
-- schema: run it on an EMPTY schema as the owning role, for example
--   psql "$OWNER_DATABASE_URL" -v ON_ERROR_STOP=1 -f src/store/postgres-schema.sql
-- then give the gateway's role what it needs at runtime (no CREATE required once the schema is
-- current):
--   GRANT USAGE ON SCHEMA public TO parley;
--   GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO parley;
-- To upgrade by hand, apply only the sections whose version is above
--   SELECT max(version) FROM parley_schema_migrations;
-- Tables are created in the first schema of the search_path (public unless the connection sets
-- options=-c search_path=...).

BEGIN;

SELECT pg_advisory_xact_lock(1885434476, hashtext(current_schema()));

CREATE TABLE IF NOT EXISTS parley_schema_migrations (
  version     integer PRIMARY KEY,
  description text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Version 1: responses, items, conversations, conversation items, conversation leases

-- One row per turn. Timestamps are unix seconds; JSON columns are JSON text.
CREATE TABLE responses (
  id                   text PRIMARY KEY,
  previous_response_id text,
  conversation_id      text,
  model                text NOT NULL,
  status               text NOT NULL,
  created_at           bigint NOT NULL,
  completed_at         bigint,
  expires_at           bigint,
  params               text NOT NULL,
  usage                text,
  error                text,
  incomplete_details   text
);
CREATE INDEX responses_expires_at ON responses (expires_at) WHERE expires_at IS NOT NULL;

-- A turn's own input and output items, each stored once. The chain walk joins on the primary key.
CREATE TABLE items (
  response_id text NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
  direction   text NOT NULL CHECK (direction IN ('input', 'output')),
  position    integer NOT NULL,
  item_id     text NOT NULL,
  data        text NOT NULL,
  PRIMARY KEY (response_id, direction, position)
);

-- seq orders conversations created within the same second in creation order.
CREATE TABLE conversations (
  id         text PRIMARY KEY,
  seq        bigint GENERATED ALWAYS AS IDENTITY,
  created_at bigint NOT NULL,
  expires_at bigint,
  end_user   text,
  metadata   jsonb NOT NULL DEFAULT '{}',
  item_count bigint NOT NULL DEFAULT 0
);
CREATE INDEX conversations_order ON conversations (created_at, seq);
CREATE INDEX conversations_end_user ON conversations (end_user, created_at, seq) WHERE end_user IS NOT NULL;
CREATE INDEX conversations_metadata ON conversations USING gin (metadata jsonb_path_ops);
CREATE INDEX conversations_expires_at ON conversations (expires_at) WHERE expires_at IS NOT NULL;

-- The ordered item list of a conversation. An item added directly carries its JSON in data; an
-- item a turn appended points at that turn's row in items instead (each item stored once). The
-- foreign key makes a dangling pointer impossible: deleting a response first copies the items
-- that conversations still point at into data.
CREATE TABLE conversation_items (
  conversation_id text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  position        bigint NOT NULL,
  item_id         text NOT NULL,
  data            text,
  response_id     text,
  direction       text,
  item_position   integer,
  PRIMARY KEY (conversation_id, position),
  FOREIGN KEY (response_id, direction, item_position) REFERENCES items (response_id, direction, position),
  CHECK ((data IS NULL) = (response_id IS NOT NULL AND direction IS NOT NULL AND item_position IS NOT NULL))
);
CREATE INDEX conversation_items_item_id ON conversation_items (conversation_id, item_id);
CREATE INDEX conversation_items_source ON conversation_items (response_id, direction, item_position)
  WHERE response_id IS NOT NULL;

-- Serialises turns on one conversation across instances. The database clock decides expiry.
CREATE TABLE conversation_leases (
  conversation_id text PRIMARY KEY,
  holder          text NOT NULL,
  expires_at      timestamptz NOT NULL
);

INSERT INTO parley_schema_migrations (version, description) VALUES (1, 'responses, items, conversations, conversation items, conversation leases');

-- ---------------------------------------------------------------------------------------------
-- Version 2: tenants, response users, insertion order, conversation totals and updated_at

-- Every record belongs to a tenant; rows from before tenants belong to 'default'.
ALTER TABLE responses
  ADD COLUMN tenant text NOT NULL DEFAULT 'default',
  ADD COLUMN end_user text,
  ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
-- A response's user, taken from its stored request (NUL and backslash escaped as Parley stores
-- keys). json cannot parse a \u0000 escape, so those are neutralised first; a user that itself
-- held NUL is left unknown rather than guessed.
UPDATE responses r
   SET end_user = replace(x.u, '\', '\\')
  FROM (SELECT id, replace(params, '\u0000', '\ufffd')::json ->> 'user' AS u,
               strpos(params, '\u0000') > 0 AS had_nul
          FROM responses) x
 WHERE r.id = x.id AND x.u IS NOT NULL AND NOT (x.had_nul AND strpos(x.u, U&'\FFFD') > 0);
CREATE UNIQUE INDEX responses_seq ON responses (seq);
CREATE INDEX responses_tenant_user ON responses (tenant, end_user) WHERE end_user IS NOT NULL;
CREATE INDEX responses_unfinished ON responses (created_at) WHERE status IN ('queued', 'in_progress');
CREATE INDEX responses_conversation ON responses (conversation_id) WHERE conversation_id IS NOT NULL;

-- Running totals of the turns appended to a conversation, rebuilt from the turns still stored.
ALTER TABLE conversations
  ADD COLUMN tenant text NOT NULL DEFAULT 'default',
  ADD COLUMN input_tokens bigint NOT NULL DEFAULT 0,
  ADD COLUMN output_tokens bigint NOT NULL DEFAULT 0,
  ADD COLUMN total_tokens bigint NOT NULL DEFAULT 0,
  ADD COLUMN cost_usd double precision NOT NULL DEFAULT 0,
  ADD COLUMN turns bigint NOT NULL DEFAULT 0,
  ADD COLUMN updated_at bigint;
UPDATE conversations c
   SET updated_at = c.created_at,
       (input_tokens, output_tokens, total_tokens, turns) = (
         SELECT coalesce(sum((r.usage::json ->> 'input_tokens')::bigint), 0),
                coalesce(sum((r.usage::json ->> 'output_tokens')::bigint), 0),
                coalesce(sum((r.usage::json ->> 'total_tokens')::bigint), 0),
                count(*)
           FROM responses r
          WHERE r.conversation_id = c.id AND r.status IN ('completed', 'incomplete'));
ALTER TABLE conversations ALTER COLUMN updated_at SET NOT NULL;
-- Listing is always within one tenant.
DROP INDEX conversations_end_user;
CREATE INDEX conversations_tenant ON conversations (tenant, created_at, seq);
CREATE INDEX conversations_tenant_user ON conversations (tenant, end_user, created_at, seq)
  WHERE end_user IS NOT NULL;

INSERT INTO parley_schema_migrations (version, description) VALUES (2, 'tenants, response users, insertion order, conversation totals and updated_at');

-- ---------------------------------------------------------------------------------------------
-- Version 3: change counter for in-process chain caches

-- One row: a counter that moves whenever a stored response is deleted or a finished one changes,
-- in the transaction that does it, whoever does it (any gateway instance or version, the CLI, an
-- operator's SQL). Gateways keep decoded chains in process while it stands still
-- (ConversationStore.changeToken). epoch tells a re-created table from the one a cache was filled
-- under. Turns being recorded and finished do not move it: an unfinished turn is never cached.
CREATE TABLE parley_changes (
  one     boolean PRIMARY KEY DEFAULT true CHECK (one),
  epoch   text NOT NULL DEFAULT md5(random()::text || clock_timestamp()::text),
  counter bigint NOT NULL DEFAULT 0
);
INSERT INTO parley_changes DEFAULT VALUES;

CREATE FUNCTION parley_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE parley_changes SET counter = counter + 1;
  RETURN NULL;
END $$;

-- Statement triggers fire even when nothing was deleted (a pruning pass that found nothing): the
-- transition table tells.
CREATE FUNCTION parley_note_deletes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM parley_deleted) THEN
    UPDATE parley_changes SET counter = counter + 1;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER responses_deleted AFTER DELETE ON responses
  REFERENCING OLD TABLE AS parley_deleted FOR EACH STATEMENT EXECUTE FUNCTION parley_note_deletes();
CREATE TRIGGER responses_truncated AFTER TRUNCATE ON responses
  FOR EACH STATEMENT EXECUTE FUNCTION parley_note_change();
-- finishTurn and saveProgress only ever update unfinished turns: the WHEN skips them.
CREATE TRIGGER responses_finished_changed AFTER UPDATE ON responses
  FOR EACH ROW WHEN (OLD.status NOT IN ('queued', 'in_progress')) EXECUTE FUNCTION parley_note_change();

INSERT INTO parley_schema_migrations (version, description) VALUES (3, 'change counter for in-process chain caches');

-- ---------------------------------------------------------------------------------------------
-- Version 4: items and conversation entries refer to responses by seq, direction 0/1

-- Items and the conversation entries that point at them name their response by its seq (8 bytes)
-- instead of its 53-character id, and their direction as 0 (input) or 1 (output): the id was
-- repeated in every item row and in every entry of the items primary key. Both tables are copied
-- into new ones (an UPDATE in place would leave the old version of every row behind), then the
-- constraints and indexes are built once over the copies. Columns are ordered for alignment.
CREATE TABLE items_v4 (
  response_seq bigint NOT NULL,
  position     integer NOT NULL,
  direction    smallint NOT NULL,
  item_id      text NOT NULL,
  data         text NOT NULL
);
INSERT INTO items_v4 (response_seq, position, direction, item_id, data)
SELECT r.seq, i.position, CASE i.direction WHEN 'input' THEN 0 ELSE 1 END, i.item_id, i.data
  FROM items i JOIN responses r ON r.id = i.response_id;

CREATE TABLE conversation_items_v4 (
  conversation_id text NOT NULL,
  position        bigint NOT NULL,
  response_seq    bigint,
  item_position   integer,
  direction       smallint,
  item_id         text NOT NULL,
  data            text
);
INSERT INTO conversation_items_v4 (conversation_id, position, response_seq, item_position, direction, item_id, data)
SELECT ci.conversation_id, ci.position, r.seq, ci.item_position,
       CASE ci.direction WHEN 'input' THEN 0 WHEN 'output' THEN 1 END, ci.item_id, ci.data
  FROM conversation_items ci LEFT JOIN responses r ON r.id = ci.response_id;

DROP TABLE conversation_items;
DROP TABLE items;
ALTER TABLE items_v4 RENAME TO items;
ALTER TABLE conversation_items_v4 RENAME TO conversation_items;

-- seq becomes the primary key (what items refer to). The id stays unique through an exclusion
-- constraint on a hash index: its entries hold a 4-byte hash rather than the 53-character id (a
-- b-tree on random ids also sits about a third empty), and ids are only ever looked up by equality.
ALTER TABLE responses DROP CONSTRAINT responses_pkey;
ALTER TABLE responses ADD CONSTRAINT responses_pkey PRIMARY KEY USING INDEX responses_seq;
ALTER TABLE responses ADD CONSTRAINT responses_id EXCLUDE USING hash (id WITH =);

-- A turn's own input and output items, each stored once. The chain walk joins on the primary key.
-- Item JSON leaves out the id, which is in item_id (rows written before keep it in the JSON too).
ALTER TABLE items
  ADD CONSTRAINT items_pkey PRIMARY KEY (response_seq, direction, position),
  ADD CONSTRAINT items_response_seq_fkey FOREIGN KEY (response_seq) REFERENCES responses (seq) ON DELETE CASCADE,
  ADD CONSTRAINT items_direction_check CHECK (direction IN (0, 1));

-- An item added directly carries its JSON in data; an item a turn appended points at that turn's
-- row in items instead (each item stored once). The foreign key makes a dangling pointer
-- impossible: deleting a response first copies the items that conversations still point at into data.
ALTER TABLE conversation_items
  ADD CONSTRAINT conversation_items_pkey PRIMARY KEY (conversation_id, position),
  ADD CONSTRAINT conversation_items_conversation_id_fkey FOREIGN KEY (conversation_id)
    REFERENCES conversations (id) ON DELETE CASCADE,
  ADD CONSTRAINT conversation_items_source_fkey FOREIGN KEY (response_seq, direction, item_position)
    REFERENCES items (response_seq, direction, position),
  ADD CONSTRAINT conversation_items_check
    CHECK ((data IS NULL) = (response_seq IS NOT NULL AND direction IS NOT NULL AND item_position IS NOT NULL));
CREATE INDEX conversation_items_item_id ON conversation_items (conversation_id, item_id);
CREATE INDEX conversation_items_source ON conversation_items (response_seq, direction, item_position)
  WHERE response_seq IS NOT NULL;

INSERT INTO parley_schema_migrations (version, description) VALUES (4, 'items and conversation entries refer to responses by seq, direction 0/1');

-- ---------------------------------------------------------------------------------------------
-- Version 5: unfinished turns held in reusable slots, so finishing a turn is a HOT update

-- Finishing a turn changes its status. While an index of responses named status (the partial
-- index of unfinished turns), that UPDATE could never be a HOT update: every index of responses got
-- a second entry for the row, and the old version's line pointer stayed until VACUUM. Unfinished
-- turns are now held in slots of their own table, taken and given back by the statements that begin
-- and finish a turn: no index of responses covers a column finishing changes.
--
-- A slot is reused rather than inserted and deleted per turn (a deleted row leaves its line pointer
-- and its index entry behind until VACUUM, a few dozen bytes per turn). Taking and giving back a
-- slot change no indexed column either, so they are HOT updates too, and the half of each page
-- fillfactor keeps free holds the new versions: the table holds as many slots as turns were
-- unfinished at once, until failStaleTurns deletes the free ones. A free slot has no response_seq.
--
-- No foreign key: its check would lock the new responses row on every turn, and deleting responses
-- would cascade one row at a time. The slot of a response deleted while unfinished goes when
-- failStaleTurns finds it due, with nothing to mark.
CREATE TABLE unfinished_turn_slots (
  slot         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  response_seq bigint,
  created_at   bigint,
  CHECK ((response_seq IS NULL) = (created_at IS NULL))
) WITH (fillfactor = 50);
INSERT INTO unfinished_turn_slots (response_seq, created_at)
SELECT seq, created_at FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY seq;
DROP INDEX responses_unfinished;

-- Both keys grow with seq (an identity): entries land at or near the right edge, where a split
-- leaves the left page as full as fillfactor asks, and the 10% kept free by default mostly stays
-- empty.
ALTER INDEX responses_pkey SET (fillfactor = 100);
ALTER INDEX items_pkey SET (fillfactor = 100);

INSERT INTO parley_schema_migrations (version, description) VALUES (5, 'unfinished turns held in reusable slots, so finishing a turn is a HOT update');

-- ---------------------------------------------------------------------------------------------
-- Version 6: response rows without alignment padding, parent ids in Parley format as 24 bytes

-- A smaller response row. Fixed-width columns come first (no padding between them), and the
-- parent's id, when it is in Parley's own format (resp_ and 48 lowercase hex digits), is kept as its
-- 24 bytes in previous_response_bytes instead of 53 characters; any other parent id stays text in
-- previous_response_text. The id is rebuilt as 'resp_' || encode(bytes, 'hex'): the same string.
-- previous_response_id is gone rather than kept beside them, so a gateway of an older version still
-- running against this schema fails on its queries instead of seeing turns without a parent.
--
-- The table is copied into a new one (an UPDATE in place would leave the old version of every row
-- behind), then its constraints, indexes and triggers are built once over the copy. seq values and
-- the identity's position are kept: items and unfinished-turn slots refer to rows by seq. Privileges
-- granted on the old table do not carry over (a gateway names the GRANTs it lacks at startup).
CREATE TABLE responses_v6 (
  seq                     bigint GENERATED ALWAYS AS IDENTITY,
  created_at              bigint NOT NULL,
  completed_at            bigint,
  expires_at              bigint,
  id                      text NOT NULL,
  previous_response_bytes bytea,
  previous_response_text  text,
  conversation_id         text,
  tenant                  text NOT NULL DEFAULT 'default',
  end_user                text,
  model                   text NOT NULL,
  status                  text NOT NULL,
  params                  text NOT NULL,
  usage                   text,
  error                   text,
  incomplete_details      text
);
INSERT INTO responses_v6 (seq, created_at, completed_at, expires_at, id, previous_response_bytes,
                          previous_response_text, conversation_id, tenant, end_user, model, status, params, usage,
                          error, incomplete_details)
OVERRIDING SYSTEM VALUE
SELECT seq, created_at, completed_at, expires_at, id,
       CASE WHEN previous_response_id ~ '^resp_[0-9a-f]{48}$' THEN decode(substr(previous_response_id, 6), 'hex') END,
       CASE WHEN previous_response_id !~ '^resp_[0-9a-f]{48}$' THEN previous_response_id END,
       conversation_id, tenant, end_user, model, status, params, usage, error, incomplete_details
  FROM responses ORDER BY seq;
SELECT setval(pg_get_serial_sequence('responses_v6', 'seq'),
              coalesce(pg_sequence_last_value(pg_get_serial_sequence('responses', 'seq')::regclass), 0) + 1, false);

ALTER TABLE items DROP CONSTRAINT items_response_seq_fkey;
DROP TABLE responses;
ALTER TABLE responses_v6 RENAME TO responses;
ALTER SEQUENCE responses_v6_seq_seq RENAME TO responses_seq_seq;

-- seq is the primary key (what items refer to; it only grows, so leaf pages are filled whole). The
-- id stays unique through an exclusion constraint on a hash index (4 bytes an entry). Its buckets
-- split once they average a full page rather than three quarters of one: measured from 1,000 to
-- 200,000 ids, 18-40% fewer pages (more of them overflow pages) at every size but one (2,000 ids:
-- one page more).
ALTER TABLE responses
  ADD CONSTRAINT responses_pkey PRIMARY KEY (seq) WITH (fillfactor = 100),
  ADD CONSTRAINT responses_id EXCLUDE USING hash (id WITH =) WITH (fillfactor = 100),
  ADD CONSTRAINT responses_previous_response_check
    CHECK (previous_response_bytes IS NULL OR (previous_response_text IS NULL AND length(previous_response_bytes) = 24));
CREATE INDEX responses_expires_at ON responses (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX responses_tenant_user ON responses (tenant, end_user) WHERE end_user IS NOT NULL;
CREATE INDEX responses_conversation ON responses (conversation_id) WHERE conversation_id IS NOT NULL;
ALTER TABLE items
  ADD CONSTRAINT items_response_seq_fkey FOREIGN KEY (response_seq) REFERENCES responses (seq) ON DELETE CASCADE;

-- The change counter's triggers (version 3), on the new table.
CREATE TRIGGER responses_deleted AFTER DELETE ON responses
  REFERENCING OLD TABLE AS parley_deleted FOR EACH STATEMENT EXECUTE FUNCTION parley_note_deletes();
CREATE TRIGGER responses_truncated AFTER TRUNCATE ON responses
  FOR EACH STATEMENT EXECUTE FUNCTION parley_note_change();
CREATE TRIGGER responses_finished_changed AFTER UPDATE ON responses
  FOR EACH ROW WHEN (OLD.status NOT IN ('queued', 'in_progress')) EXECUTE FUNCTION parley_note_change();

INSERT INTO parley_schema_migrations (version, description) VALUES (6, 'response rows without alignment padding, parent ids in Parley format as 24 bytes');

-- ---------------------------------------------------------------------------------------------
-- Version 7: lean conversation entries: keyed by conversation seq, turn entries hold only their item key

-- A conversation entry repeated the conversation's text id and the item's id, under three indexes
-- (primary key, item id, source): 410 bytes an entry beside a 370-byte item. Entries now name their
-- conversation by its seq, a turn's entry holds only its item's key (the item row has the id), and
-- the item-id and source indexes go: an item is looked up by id by reading the conversation's
-- entries in order (get, delete, a page's after cursor, a fork's end).
--
-- Without the source index nothing finds the entries that point at a response's items, except
-- this rule: an entry may point only at an item of a response of its own conversation, within the
-- run of positions that response's items were appended at, which the response records
-- (conversation_position, set by finishTurn under the conversation's row lock). Before a response
-- row is deleted, its trigger copies exactly that run's pointed-at items into their entries. It is
-- a BEFORE ROW trigger: it runs once the row is locked, so a finishTurn that appended the turn
-- while the delete waited has committed, and the trigger's own statement sees its entries. (The
-- foreign key to items did that job before; it needed the source index.)
-- Existing entries that break the rule (forks, which used to point across conversations, and
-- imports out of turn order) become copies here.
ALTER TABLE responses ADD COLUMN conversation_position bigint;
UPDATE responses r SET conversation_position = m.first
  FROM (SELECT ci.response_seq, min(ci.position) AS first
          FROM conversation_items ci JOIN responses o ON o.seq = ci.response_seq AND o.conversation_id = ci.conversation_id
         GROUP BY ci.response_seq) m
 WHERE r.seq = m.response_seq;

ALTER TABLE conversations ADD CONSTRAINT conversations_seq UNIQUE (seq);
CREATE TABLE conversation_items_v7 (
  conversation_seq bigint NOT NULL,
  position         bigint NOT NULL,
  response_seq     bigint,
  item_position    integer,
  direction        smallint,
  item_id          text,
  data             text
);
INSERT INTO conversation_items_v7 (conversation_seq, position, response_seq, item_position, direction, item_id, data)
SELECT cv.seq, ci.position,
       CASE WHEN ci.kept THEN ci.response_seq END, CASE WHEN ci.kept THEN ci.item_position END,
       CASE WHEN ci.kept THEN ci.direction END, CASE WHEN NOT ci.kept THEN ci.item_id END,
       CASE WHEN NOT ci.kept THEN COALESCE(ci.data, i.data) END
  FROM (SELECT ci.*, COALESCE(ci.response_seq IS NOT NULL AND r.conversation_id = ci.conversation_id
                              AND ci.position >= r.conversation_position
                              AND ci.position < r.conversation_position
                                                + (SELECT count(*) FROM items n WHERE n.response_seq = r.seq),
                              false) AS kept
          FROM conversation_items ci LEFT JOIN responses r ON r.seq = ci.response_seq) ci
  JOIN conversations cv ON cv.id = ci.conversation_id
  LEFT JOIN items i ON i.response_seq = ci.response_seq AND i.direction = ci.direction AND i.position = ci.item_position
 ORDER BY cv.seq, ci.position;
DROP TABLE conversation_items;
ALTER TABLE conversation_items_v7 RENAME TO conversation_items;
ALTER TABLE conversation_items
  ADD CONSTRAINT conversation_items_pkey PRIMARY KEY (conversation_seq, position),
  ADD CONSTRAINT conversation_items_conversation_seq_fkey FOREIGN KEY (conversation_seq)
    REFERENCES conversations (seq) ON DELETE CASCADE,
  ADD CONSTRAINT conversation_items_check
    CHECK ((data IS NULL) = (response_seq IS NOT NULL AND direction IS NOT NULL AND item_position IS NOT NULL)
           AND (item_id IS NULL) = (data IS NULL));

CREATE FUNCTION parley_keep_conversation_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE conversation_items ci
     SET item_id = i.item_id, data = i.data, response_seq = NULL, direction = NULL, item_position = NULL
    FROM items i
   WHERE ci.conversation_seq = (SELECT seq FROM conversations WHERE id = OLD.conversation_id)
     AND ci.position >= OLD.conversation_position
     AND ci.position < OLD.conversation_position + (SELECT count(*) FROM items WHERE response_seq = OLD.seq)
     AND ci.response_seq = OLD.seq
     AND i.response_seq = ci.response_seq AND i.direction = ci.direction AND i.position = ci.item_position;
  RETURN OLD;
END $$;
CREATE TRIGGER responses_keep_conversation_items BEFORE DELETE ON responses
  FOR EACH ROW WHEN (OLD.conversation_position IS NOT NULL) EXECUTE FUNCTION parley_keep_conversation_items();

INSERT INTO parley_schema_migrations (version, description) VALUES (7, 'lean conversation entries: keyed by conversation seq, turn entries hold only their item key');

-- ---------------------------------------------------------------------------------------------
-- Version 8: the change counter also moves when items leave a conversation

-- Gateways keep decoded conversations in process too (engine/conversation-cache.ts) and load only
-- what was appended since a conversation's last turn, while the counter stands still. So it moves
-- whenever items leave a conversation: an item deleted, a conversation deleted or pruned (its
-- entries go by cascade, which fires these triggers too). Appends do not move it.
CREATE TRIGGER conversation_items_deleted AFTER DELETE ON conversation_items
  REFERENCING OLD TABLE AS parley_deleted FOR EACH STATEMENT EXECUTE FUNCTION parley_note_deletes();
CREATE TRIGGER conversation_items_truncated AFTER TRUNCATE ON conversation_items
  FOR EACH STATEMENT EXECUTE FUNCTION parley_note_change();

INSERT INTO parley_schema_migrations (version, description) VALUES (8, 'the change counter also moves when items leave a conversation');

COMMIT;
