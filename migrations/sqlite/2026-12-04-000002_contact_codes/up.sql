-- The codes that prove a user's e-mail address and phone number (hashes, expiry, wrong
-- tries), as JSON; NULL while none is outstanding. No earlier event made one.
ALTER TABLE users ADD COLUMN contact_codes TEXT;
