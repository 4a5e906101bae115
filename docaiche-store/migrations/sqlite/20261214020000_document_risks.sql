-- A document's risk flags (`DocumentMeta::risks`), stored with its text by
-- `put_text`: the snake_case names of `RiskFlag`, sorted and comma-separated
-- (`java_script,open_action`); '' for none, which is also what documents
-- extracted before this column read back (until extracted again). A name
-- this build does not know reads back as an internal error. No index:
-- listings filter on the flags of the pages they read.
ALTER TABLE documents ADD COLUMN risks TEXT NOT NULL DEFAULT '';
