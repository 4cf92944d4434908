// The tables of migrations/{sqlite,postgres}: identical column types on both backends.

diesel::table! {
    instance (id) {
        id -> Text,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        created_at_us -> BigInt,
        changed_at_us -> BigInt,
    }
}

diesel::table! {
    events (aggregate_type, aggregate_id, sequence) {
        aggregate_type -> Text,
        aggregate_id -> Text,
        sequence -> BigInt,
        event_type -> Text,
        org_id -> Text,
        actor_id -> Nullable<Text>,
        payload -> Text,
        created_at_us -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        id_key -> Text,
        org_id -> Text,
        schema_id -> Nullable<Text>,
        data -> Text,
        email -> Nullable<Text>,
        email_key -> Nullable<Text>,
        email_verified -> Bool,
        phone -> Nullable<Text>,
        phone_verified -> Bool,
        usernames -> Text,
        lifecycle -> Text,
        locked -> Bool,
        state -> Text,
        created_at_us -> BigInt,
        changed_at_us -> BigInt,
        sequence -> BigInt,
        lock_cause -> Nullable<Text>,
        locked_until_us -> Nullable<BigInt>,
        password_hash -> Nullable<Text>,
        password_changed_at_us -> Nullable<BigInt>,
        password_change_required -> Bool,
        failed_password_checks -> BigInt,
        password_code_hash -> Nullable<Text>,
        password_code_expires_at_us -> Nullable<BigInt>,
        password_code_failures -> BigInt,
        contact_codes -> Nullable<Text>,
        sessions_valid_from_us -> BigInt,
    }
}

diesel::table! {
    usernames (id) {
        id -> Text,
        user_id -> Text,
        org_id -> Text,
        username -> Text,
        username_key -> Text,
        organization_specific -> Bool,
    }
}

diesel::table! {
    instance_members (user_id) {
        user_id -> Text,
        roles -> Text,
        created_at_us -> BigInt,
        changed_at_us -> BigInt,
    }
}

diesel::table! {
    org_members (org_id, user_id) {
        org_id -> Text,
        user_id -> Text,
        roles -> Text,
        created_at_us -> BigInt,
        changed_at_us -> BigInt,
    }
}

diesel::table! {
    personal_access_tokens (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        expires_at_us -> Nullable<BigInt>,
        revoked_at_us -> Nullable<BigInt>,
        created_at_us -> BigInt,
        issuer_id -> Nullable<Text>,
        ceiling -> Nullable<Text>,
    }
}

diesel::table! {
    login_settings (scope, kind) {
        scope -> Text,
        kind -> Text,
        value -> Text,
        created_at_us -> BigInt,
        changed_at_us -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        org_id -> Text,
        login_name -> Text,
        token_hash -> Text,
        created_at_us -> BigInt,
        changed_at_us -> BigInt,
        expires_at_us -> Nullable<BigInt>,
        user_verified_at_us -> BigInt,
        password_verified_at_us -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        user_id -> Text,
        channel -> Text,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        created_at_us -> BigInt,
        next_attempt_at_us -> BigInt,
        attempts -> Integer,
        claimed_until_us -> Nullable<BigInt>,
        sent_at_us -> Nullable<BigInt>,
        failed_at_us -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    data_migrations (name) {
        name -> Text,
        applied_at_us -> BigInt,
    }
}

diesel::joinable!(usernames -> users (user_id));
diesel::joinable!(personal_access_tokens -> users (user_id));
diesel::joinable!(users -> organizations (org_id));
diesel::joinable!(instance_members -> users (user_id));
diesel::joinable!(org_members -> users (user_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    instance,
    sessions,
    login_settings,
    organizations,
    events,
    users,
    usernames,
    instance_members,
    org_members,
    personal_access_tokens,
    data_migrations,
);
