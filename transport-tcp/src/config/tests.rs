use super::*;

#[test]
fn defaults_are_valid() {
    assert_eq!(ClientConfig::default().validate(), Ok(()));
    assert_eq!(ServerConfig::default().validate(), Ok(()));
}

#[test]
fn out_of_range_values_are_refused() {
    let zero_pool = ClientConfig {
        pool_size: 0,
        ..ClientConfig::default()
    };
    assert!(zero_pool.validate().is_err());
    let zero_frame = ServerConfig {
        max_frame_length: 0,
        ..ServerConfig::default()
    };
    assert_eq!(
        zero_frame.validate(),
        Err(TransportError::ConfigTooSmall {
            field: "max_frame_length",
            min: 1,
            value: 0
        })
    );
    let huge_frame = ServerConfig {
        max_frame_length: MAX_FRAME_LENGTH_LIMIT + 1,
        ..ServerConfig::default()
    };
    assert_eq!(
        huge_frame.validate(),
        Err(TransportError::ConfigTooLarge {
            field: "max_frame_length",
            max: MAX_FRAME_LENGTH_LIMIT as u64,
            value: MAX_FRAME_LENGTH_LIMIT as u64 + 1
        })
    );
    let zero_read_timeout = ServerConfig {
        frame_read_timeout: Duration::ZERO,
        ..ServerConfig::default()
    };
    assert_eq!(
        zero_read_timeout.validate(),
        Err(TransportError::ConfigZeroDuration {
            field: "frame_read_timeout"
        })
    );
    let zero_cap = ServerConfig {
        max_connections_per_ip: 0,
        ..ServerConfig::default()
    };
    assert!(zero_cap.validate().is_err());
}

#[test]
fn budgets_are_raised_to_one_largest_frame_and_the_reserve_lowered_to_the_budget() {
    let config = ServerConfig {
        max_frame_length: 64 * 1024 * 1024,
        ..ServerConfig::default()
    };
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(
        config.effective_connection_budget(),
        64 * 1024 * 1024 + LENGTH_PREFIX_LEN
    );
    assert_eq!(config.effective_receive_budget(), DEFAULT_RECEIVE_BUDGET);
    let small = ServerConfig {
        max_frame_length: 1024,
        connection_budget: 10,
        response_reserve: 10,
        ..ServerConfig::default()
    };
    assert_eq!(small.effective_connection_budget(), 1028);
    let huge_reserve = ServerConfig {
        response_reserve: DEFAULT_CONNECTION_BUDGET + 1,
        ..ServerConfig::default()
    };
    assert_eq!(huge_reserve.validate(), Ok(()));
    assert_eq!(
        huge_reserve.effective_response_reserve(),
        DEFAULT_CONNECTION_BUDGET
    );
}
