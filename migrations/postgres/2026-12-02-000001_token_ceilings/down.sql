DROP TABLE data_migrations;
ALTER TABLE personal_access_tokens DROP COLUMN ceiling;
ALTER TABLE personal_access_tokens DROP COLUMN issuer_id;
