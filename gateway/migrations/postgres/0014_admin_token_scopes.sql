-- What each admin token may do (crate::vault::scope), space-separated: `admin` for tokens made
-- before scopes existed and for the bootstrap token's peers.
ALTER TABLE admin_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
