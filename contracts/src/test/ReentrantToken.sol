// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TEST HARNESS ONLY: a malicious ERC-20 that calls back into a target during its
///        transfers, to show the Vault cannot be re-entered. Never deploy outside tests.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public payload;
    bool public armed;
    bool public lastCallSucceeded;
    bytes public lastCallResult;
    uint256 public attempts;

    constructor() ERC20("Reentrant Test Token", "EVIL") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice On the next transfer or transferFrom, call `target_` with `payload_` (once).
    function arm(address target_, bytes calldata payload_) external {
        target = target_;
        payload = payload_;
        armed = true;
    }

    function transfer(address to, uint256 value) public override returns (bool) {
        _attack();
        return super.transfer(to, value);
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        _attack();
        return super.transferFrom(from, to, value);
    }

    function _attack() private {
        if (!armed) return;
        armed = false;
        attempts += 1;
        (bool ok, bytes memory result) = target.call(payload);
        lastCallSucceeded = ok;
        lastCallResult = result;
    }
}
