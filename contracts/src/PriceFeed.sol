// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @notice Chainlink's AggregatorV3Interface, the read side consumers use.
interface AggregatorV3Interface {
    function decimals() external view returns (uint8);
    function description() external view returns (string memory);
    function version() external view returns (uint256);
    function getRoundData(uint80 roundId)
        external
        view
        returns (uint80 roundId_, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @title PriceFeed: an AggregatorV3-compatible USD price of the native token.
/// @notice Holders of UPDATER_ROLE publish a new round with {updateAnswer}. Consumers read
///         {latestRoundData} and must reject a stale `updatedAt` themselves, as with Chainlink.
contract PriceFeed is AggregatorV3Interface, AccessControl {
    bytes32 public constant UPDATER_ROLE = keccak256("UPDATER_ROLE");

    struct Round {
        int256 answer;
        uint64 updatedAt;
    }

    /// @notice A price must be strictly positive.
    error NonPositiveAnswer(int256 answer);
    /// @notice No round with this id has been published.
    error NoDataPresent(uint80 roundId);

    /// @notice Chainlink's event for a new answer.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    /// @notice Chainlink's event for a new round.
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    uint8 public immutable override decimals;
    string public override description;
    uint256 public constant override version = 1;

    uint80 public latestRound;
    mapping(uint80 roundId => Round) private _rounds;

    constructor(address admin, uint8 decimals_, string memory description_, int256 initialAnswer) {
        decimals = decimals_;
        description = description_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(UPDATER_ROLE, admin);
        _publish(initialAnswer);
    }

    /// @notice Publishes a new round with `answer` (scaled by 10**decimals), timestamped now.
    function updateAnswer(int256 answer) external onlyRole(UPDATER_ROLE) {
        _publish(answer);
    }

    function getRoundData(uint80 roundId) external view override returns (uint80, int256, uint256, uint256, uint80) {
        Round memory round = _rounds[roundId];
        if (round.updatedAt == 0) revert NoDataPresent(roundId);
        return (roundId, round.answer, round.updatedAt, round.updatedAt, roundId);
    }

    function latestRoundData() external view override returns (uint80, int256, uint256, uint256, uint80) {
        uint80 roundId = latestRound;
        Round memory round = _rounds[roundId];
        return (roundId, round.answer, round.updatedAt, round.updatedAt, roundId);
    }

    function _publish(int256 answer) private {
        if (answer <= 0) revert NonPositiveAnswer(answer);
        uint80 roundId = latestRound + 1;
        latestRound = roundId;
        _rounds[roundId] = Round({answer: answer, updatedAt: uint64(block.timestamp)});
        emit NewRound(roundId, msg.sender, block.timestamp);
        emit AnswerUpdated(answer, roundId, block.timestamp);
    }
}
