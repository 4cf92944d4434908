DROP TABLE sessions;
DROP TABLE login_settings;
ALTER TABLE users DROP COLUMN failed_password_checks;
ALTER TABLE users DROP COLUMN password_change_required;
ALTER TABLE users DROP COLUMN password_changed_at_us;
ALTER TABLE users DROP COLUMN password_hash;
ALTER TABLE users DROP COLUMN locked_until_us;
ALTER TABLE users DROP COLUMN lock_cause;
