-- Search (issue 17): agents search their workspace's messages by text, in the language the
-- workspace chose (English and Spanish stem words; 'simple' matches whole words in any language).
--
-- The language is text, not regconfig (a regconfig column blocks pg_upgrade), mapped to a
-- constant configuration by an immutable function so that a generated column can use it.
-- Each message keeps the language it was indexed in: a workspace that changes its language
-- indexes its new messages in the new one, and a search asks each language of its messages in
-- turn (storage/queries.py search_messages), so nothing has to be rewritten.
CREATE OR REPLACE FUNCTION curbe_search_config(language text) RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE language
        WHEN 'english' THEN 'pg_catalog.english'::regconfig
        WHEN 'spanish' THEN 'pg_catalog.spanish'::regconfig
        ELSE 'pg_catalog.simple'::regconfig
    END
$$;

ALTER TABLE tenants
    ADD COLUMN search_language text NOT NULL DEFAULT 'simple'
        CHECK (search_language IN ('simple', 'english', 'spanish'));

ALTER TABLE messages
    ADD COLUMN language text NOT NULL DEFAULT 'simple',
    ADD COLUMN search tsvector
        GENERATED ALWAYS AS (to_tsvector(curbe_search_config(language), text)) STORED;
CREATE INDEX messages_search ON messages USING gin (search);
