DROP TABLE personal_access_tokens;
DROP TABLE org_members;
DROP TABLE instance_members;
DROP TABLE usernames;
DROP TABLE users;
DROP TABLE events;
DROP TABLE organizations;
DROP TABLE instance;
