use super::*;

fn rules() -> ComplexitySettings {
    ComplexitySettings {
        min_length: 10,
        requires_uppercase: true,
        requires_lowercase: true,
        requires_number: true,
        requires_symbol: true,
    }
}

fn rule_broken(password: &str, settings: &ComplexitySettings) -> Option<&'static str> {
    match check_complexity(password, settings) {
        Ok(()) => None,
        Err(ServiceError::PasswordTooWeak { rule, .. }) => Some(rule),
        Err(other) => Some(other.reason()),
    }
}

#[test]
fn each_complexity_rule_is_named_when_broken() {
    let all = rules();
    assert_eq!(rule_broken("Sh0rt!", &all), Some("minLength"));
    assert_eq!(rule_broken("lowercase1!x", &all), Some("requiresUppercase"));
    assert_eq!(rule_broken("UPPERCASE1!X", &all), Some("requiresLowercase"));
    assert_eq!(rule_broken("NoDigitsHere!", &all), Some("requiresNumber"));
    assert_eq!(rule_broken("NoSymbols123", &all), Some("requiresSymbol"));
    assert_eq!(rule_broken("Good-Pass-123", &all), None);
    // Characters, not bytes: eight letters of a non-Latin script are eight.
    assert_eq!(rule_broken("пароль12", &ComplexitySettings::DEFAULT), None);
}

#[test]
fn overlong_passwords_are_refused_before_hashing() {
    let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
    assert_eq!(
        rule_broken(&long, &ComplexitySettings::DEFAULT),
        Some("PASSWORD_TOO_LONG")
    );
    assert_eq!(
        rule_broken(
            &"a".repeat(MAX_PASSWORD_BYTES),
            &ComplexitySettings::DEFAULT
        ),
        None
    );
}
