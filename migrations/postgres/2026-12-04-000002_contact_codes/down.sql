ALTER TABLE users DROP COLUMN contact_codes;
