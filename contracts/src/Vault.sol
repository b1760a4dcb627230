// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title Farthing Vault: deposits in, quorum-certified withdrawals out.
/// @notice Holds the ERC-20 tokens that back the Farthing ledger.
///  - Agents `deposit` registered tokens for a beneficiary; every deposit gets a strictly
///    increasing id (`Deposited`), which the ledger nodes credit once each, in id order.
///  - Governance registers a committee per epoch (members, their endpoints, a quorum).
///  - Anyone may `redeem` a withdrawal certificate: a `Withdrawal` order plus the votes of at
///    least `quorum` distinct members of the certificate's epoch. Each (account, sequence)
///    is paid at most once. A certificate names its voters by a bitmap of committee
///    indexes (`signers`, bit i = member i) and lists their votes in ascending index order;
///    votes are EIP-2098 compact signatures, so a high-s (malleable) form cannot be expressed.
///  - Each committee's member list is stored as the code of a data contract (one cold
///    EXTCODECOPY reads it all), which keeps `redeem` within its gas budget.
///  - Members bond native tokens; two votes by one member for different orders at one
///    (account, sequence) slash the bond, part of it paid to the reporter.
/// Epoch rule: certificates of the current epoch are accepted; those of a retired epoch for
/// `retirementGrace` seconds after it was retired. Later, the holder of an unredeemed
/// certificate asks the current committee to vote for the same Withdrawal again (the order
/// and its (account, sequence) are unchanged, so it cannot be paid twice).
/// All messages are EIP-712 typed data under the domain ("Farthing", "1", chainId, this).
contract Vault is AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------------ types

    bytes32 public constant GOVERNANCE_ROLE = keccak256("GOVERNANCE_ROLE");

    bytes32 public constant TRANSFER_TYPEHASH = keccak256(
        "Transfer(address payer,address payee,address token,uint256 amount,uint64 sequence,bytes32 reference)"
    );
    bytes32 public constant WITHDRAWAL_TYPEHASH =
        keccak256("Withdrawal(address account,address recipient,address token,uint256 amount,uint64 sequence)");
    bytes32 public constant VOTE_TYPEHASH = keccak256("Vote(bytes32 order,uint64 epoch)");

    uint256 public constant MAX_COMMITTEE_SIZE = 255;
    /// @dev secp256k1's order n, halved: the largest s EIP-2 allows.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint16 public constant BPS = 10_000;

    struct Withdrawal {
        address account;
        address recipient;
        address token;
        uint256 amount;
        uint64 sequence;
    }

    /// @notice An EIP-2098 compact ECDSA signature: `vs` = (v - 27) << 255 | s, s in the
    ///         lower half order.
    struct Signature {
        bytes32 r;
        bytes32 vs;
    }

    /// @notice `signers` has bit i set when committee member i voted; `votes` holds their
    ///         signatures of the Vote in ascending member index order.
    struct WithdrawalCertificate {
        Withdrawal withdrawal;
        uint64 epoch;
        uint256 signers;
        Signature[] votes;
    }

    enum OrderKind {
        Transfer,
        Withdrawal
    }

    /// @notice Either ledger order, for equivocation evidence. For a Transfer,
    ///         `counterparty` is the payee; for a Withdrawal it is the recipient and `ref`
    ///         must be zero.
    struct Order {
        OrderKind kind;
        address account;
        address counterparty;
        address token;
        uint256 amount;
        uint64 sequence;
        bytes32 ref;
    }

    /// @dev One storage slot per epoch. `members` is the data contract holding the packed
    ///      member addresses (20 bytes each, after a leading STOP byte).
    struct EpochInfo {
        address members;
        uint8 size;
        uint8 quorum;
        uint64 retiredAt; // 0 while current
    }

    struct Bond {
        uint256 amount;
        uint64 unbondRequestedAt; // 0 when no unbonding is pending
        bool slashed;
    }

    // ------------------------------------------------------------------ errors

    error ZeroAmount();
    error ZeroAddress();
    error TokenNotRegistered(address token);
    error TokenAlreadyRegistered(address token);
    error PermitFailed(address token);
    error EmptyBatch();
    error UnknownEpoch(uint64 epoch);
    error EpochExpired(uint64 epoch, uint64 acceptedUntil);
    error InvalidVoteSignature(uint256 index);
    error HighSVoteSignature(uint256 index);
    error VoteNotByMember(uint256 index, address member, address signer);
    error SignerOutOfRange(uint256 signers, uint256 committeeSize);
    error VoteCountMismatch(uint256 signers, uint256 votes);
    error InsufficientQuorum(uint256 votes, uint256 quorum);
    error AlreadyRedeemed(address account, uint64 sequence);
    error CommitteeSizeOutOfRange(uint256 size);
    error LengthMismatch(uint256 members, uint256 endpoints);
    error QuorumOutOfRange(uint64 quorum, uint256 minimum, uint256 maximum);
    error DuplicateMember(address member);
    error EmptyEndpoint(address member);
    error InsufficientBond(address member, uint256 bonded, uint256 minimum);
    error MemberUnbonding(address member);
    error MemberSlashed(address member);
    error NotInCurrentCommittee(address member);
    error StillInCurrentCommittee(address member);
    error UnbondNotRequested(address member);
    error UnbondingPending(address member, uint64 availableAt);
    error NothingToSlash(address member);
    error NoBond(address member);
    error NotEquivocation();
    error InvalidOrder();
    error InvalidParameter();
    error CommitteeStoreFailed();

    // ------------------------------------------------------------------ events

    event TokenRegistered(address indexed token);
    event TokenDeregistered(address indexed token);
    event Deposited(
        uint64 indexed id, address indexed beneficiary, address indexed token, uint256 amount, address depositor
    );
    event EpochStarted(uint64 indexed epoch, address[] members, string[] endpoints, uint64 quorum);
    event EpochRetired(uint64 indexed epoch, uint64 retiredAt);
    event EndpointUpdated(uint64 indexed epoch, address indexed member, string endpoint);
    /// @dev Recipient, token and amount are in the token's own Transfer event of the same call
    ///      (kept out of this one to stay within the redemption gas budget).
    event Redeemed(address indexed account, uint64 sequence);
    event RedemptionSkipped(address indexed account, uint64 indexed sequence);
    event Bonded(address indexed member, address indexed payer, uint256 amount, uint256 total);
    event UnbondRequested(address indexed member, uint64 availableAt);
    event BondWithdrawn(address indexed member, address indexed to, uint256 amount);
    event Slashed(address indexed member, address indexed reporter, uint256 amount, uint256 reward);
    event ParametersUpdated(
        uint256 minBond, uint64 retirementGrace, uint64 unbondingDelay, uint16 slashRewardBps, address treasury
    );

    // ------------------------------------------------------------------ state

    IERC20 public immutable bondToken;

    uint64 public currentEpoch;
    uint64 public nextDepositId = 1;

    uint256 public minBond;
    uint64 public retirementGrace = 7 days;
    uint64 public unbondingDelay = 14 days;
    uint16 public slashRewardBps = 5_000;
    address public treasury;

    mapping(address token => bool) public isTokenRegistered;
    mapping(address member => Bond) public bonds;

    mapping(uint64 epoch => EpochInfo) private _epochs;
    mapping(uint64 epoch => string[]) private _endpoints;
    /// @dev 1 + the member's index in the epoch's committee; 0 for a non-member.
    mapping(uint64 epoch => mapping(address member => uint256)) private _memberSlot;
    /// @dev Redeemed bits live at storage slot keccak256(account ‖ sequence >> 8 ‖
    ///      REDEEMED_NAMESPACE) (three words, so no Solidity mapping slot can collide);
    ///      bit (sequence & 255) of that slot is set once (account, sequence) is paid.
    bytes32 private constant REDEEMED_NAMESPACE = keccak256("farthing.vault.redeemed");

    constructor(address governance, IERC20 bondToken_, uint256 minBond_) EIP712("Farthing", "1") {
        if (governance == address(0) || address(bondToken_) == address(0)) revert ZeroAddress();
        bondToken = bondToken_;
        minBond = minBond_;
        treasury = governance;
        _grantRole(DEFAULT_ADMIN_ROLE, governance);
        _grantRole(GOVERNANCE_ROLE, governance);
    }

    // ------------------------------------------------------------------ governance

    function registerToken(address token) external onlyRole(GOVERNANCE_ROLE) {
        if (token == address(0)) revert ZeroAddress();
        if (isTokenRegistered[token]) revert TokenAlreadyRegistered(token);
        isTokenRegistered[token] = true;
        emit TokenRegistered(token);
    }

    /// @notice Stops new deposits of `token`. Certificates for it are still redeemable.
    function deregisterToken(address token) external onlyRole(GOVERNANCE_ROLE) {
        if (!isTokenRegistered[token]) revert TokenNotRegistered(token);
        isTokenRegistered[token] = false;
        emit TokenDeregistered(token);
    }

    function setParameters(
        uint256 minBond_,
        uint64 retirementGrace_,
        uint64 unbondingDelay_,
        uint16 slashRewardBps_,
        address treasury_
    ) external onlyRole(GOVERNANCE_ROLE) {
        // A bond must stay slashable for as long as its member's certificates are accepted.
        if (unbondingDelay_ < retirementGrace_ || slashRewardBps_ > BPS) revert InvalidParameter();
        if (treasury_ == address(0)) revert ZeroAddress();
        minBond = minBond_;
        retirementGrace = retirementGrace_;
        unbondingDelay = unbondingDelay_;
        slashRewardBps = slashRewardBps_;
        treasury = treasury_;
        emit ParametersUpdated(minBond_, retirementGrace_, unbondingDelay_, slashRewardBps_, treasury_);
    }

    /// @notice Retires the current committee and starts the next epoch with a new one.
    /// @dev Every member must be bonded with at least `minBond`, not unbonding, never slashed.
    ///      The quorum must be at least floor(2n/3)+1 and at most n.
    function startEpoch(address[] calldata members, string[] calldata endpoints, uint64 quorum)
        external
        onlyRole(GOVERNANCE_ROLE)
        returns (uint64 epoch)
    {
        uint256 n = members.length;
        if (n == 0 || n > MAX_COMMITTEE_SIZE) revert CommitteeSizeOutOfRange(n);
        if (endpoints.length != n) revert LengthMismatch(n, endpoints.length);
        uint256 minimumQuorum = (2 * n) / 3 + 1;
        if (quorum < minimumQuorum || quorum > n) revert QuorumOutOfRange(quorum, minimumQuorum, n);

        uint64 previous = currentEpoch;
        epoch = previous + 1;
        mapping(address => uint256) storage slots = _memberSlot[epoch];
        for (uint256 i = 0; i < n; ++i) {
            address member = members[i];
            if (member == address(0)) revert ZeroAddress();
            if (slots[member] != 0) revert DuplicateMember(member);
            if (bytes(endpoints[i]).length == 0) revert EmptyEndpoint(member);
            Bond storage b = bonds[member];
            if (b.slashed) revert MemberSlashed(member);
            if (b.unbondRequestedAt != 0) revert MemberUnbonding(member);
            if (b.amount < minBond) revert InsufficientBond(member, b.amount, minBond);
            slots[member] = i + 1;
        }

        if (previous != 0) {
            uint64 now_ = uint64(block.timestamp);
            _epochs[previous].retiredAt = now_;
            emit EpochRetired(previous, now_);
        }
        _epochs[epoch] = EpochInfo({
            members: _storeMembers(members),
            size: uint8(n),
            quorum: uint8(quorum),
            retiredAt: 0
        });
        string[] storage stored = _endpoints[epoch];
        for (uint256 i = 0; i < n; ++i) {
            stored.push(endpoints[i]);
        }
        currentEpoch = epoch;
        emit EpochStarted(epoch, members, endpoints, quorum);
    }

    /// @notice A member of the current committee moves its node to a new endpoint URL.
    function setEndpoint(string calldata endpoint) external {
        uint64 epoch = currentEpoch;
        uint256 slot = _memberSlot[epoch][msg.sender];
        if (slot == 0) revert NotInCurrentCommittee(msg.sender);
        if (bytes(endpoint).length == 0) revert EmptyEndpoint(msg.sender);
        _endpoints[epoch][slot - 1] = endpoint;
        emit EndpointUpdated(epoch, msg.sender, endpoint);
    }

    // ------------------------------------------------------------------ deposits

    /// @notice Moves `amount` of `token` from the caller into the Vault, credited on the
    ///         ledger to `beneficiary` under the returned deposit id.
    function deposit(address token, uint256 amount, address beneficiary)
        external
        nonReentrant
        returns (uint64 id)
    {
        return _deposit(token, amount, beneficiary);
    }

    /// @notice {deposit} in one transaction with an EIP-2612 permit for the Vault. A permit
    ///         that fails (e.g. front-run and already used) is ignored when the allowance
    ///         already covers `amount`.
    function depositWithPermit(
        address token,
        uint256 amount,
        address beneficiary,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint64 id) {
        if (!isTokenRegistered[token]) revert TokenNotRegistered(token);
        try IERC20Permit(token).permit(msg.sender, address(this), amount, deadline, v, r, s) {}
        catch {
            if (IERC20(token).allowance(msg.sender, address(this)) < amount) revert PermitFailed(token);
        }
        return _deposit(token, amount, beneficiary);
    }

    function _deposit(address token, uint256 amount, address beneficiary) private returns (uint64 id) {
        if (amount == 0) revert ZeroAmount();
        if (beneficiary == address(0)) revert ZeroAddress();
        if (!isTokenRegistered[token]) revert TokenNotRegistered(token);
        id = nextDepositId;
        nextDepositId = id + 1;
        emit Deposited(id, beneficiary, token, amount, msg.sender);
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    // ------------------------------------------------------------------ withdrawals

    /// @notice Pays out one withdrawal certificate. Reverts with {AlreadyRedeemed} if its
    ///         (account, sequence) was paid before.
    function redeem(WithdrawalCertificate calldata certificate) external nonReentrant {
        uint64 epoch = certificate.epoch;
        EpochInfo memory info = _acceptedEpoch(epoch);
        bytes memory members = _loadMembers(info.members, info.size);
        if (!_redeem(certificate, epoch, info, members, _domainSeparatorV4())) {
            Withdrawal calldata w = certificate.withdrawal;
            revert AlreadyRedeemed(w.account, w.sequence);
        }
    }

    /// @notice Pays out many certificates; one already paid is skipped (RedemptionSkipped),
    ///         so a front-run item cannot block the batch. Any invalid certificate reverts all.
    /// @return paid how many certificates were paid by this call.
    function redeemBatch(WithdrawalCertificate[] calldata certificates)
        external
        nonReentrant
        returns (uint256 paid)
    {
        uint256 count = certificates.length;
        if (count == 0) revert EmptyBatch();
        bytes32 domain = _domainSeparatorV4();
        uint64 loadedEpoch; // the epoch whose committee is in `members` (0: none yet)
        EpochInfo memory info;
        bytes memory members;
        for (uint256 i = 0; i < count; ++i) {
            WithdrawalCertificate calldata certificate = certificates[i];
            uint64 epoch = certificate.epoch;
            if (epoch != loadedEpoch) {
                info = _acceptedEpoch(epoch);
                members = _loadMembers(info.members, info.size);
                loadedEpoch = epoch;
            }
            if (_redeem(certificate, epoch, info, members, domain)) {
                ++paid;
            } else {
                Withdrawal calldata w = certificate.withdrawal;
                emit RedemptionSkipped(w.account, w.sequence);
            }
        }
    }

    /// @dev Verifies and pays one certificate of an accepted epoch whose committee is
    ///      `members`; returns false, changing nothing, if its (account, sequence) was paid.
    function _redeem(
        WithdrawalCertificate calldata certificate,
        uint64 epoch,
        EpochInfo memory info,
        bytes memory members,
        bytes32 domain
    ) private returns (bool) {
        Withdrawal calldata w = certificate.withdrawal;
        address account = w.account;
        uint64 sequence = w.sequence;
        if (_markRedeemed(account, sequence)) return false;
        address recipient = w.recipient;
        address token = w.token;
        uint256 amount = w.amount;
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0)) revert ZeroAddress();
        bytes32 order = _withdrawalDigest(domain, account, recipient, token, amount, sequence);
        _checkVotes(_voteDigest(domain, order, epoch), info, members, certificate.signers, certificate.votes);
        emit Redeemed(account, sequence);
        IERC20(token).safeTransfer(recipient, amount);
        return true;
    }

    /// @dev Sets the redeemed bit of (account, sequence); returns whether it was set before.
    function _markRedeemed(address account, uint64 sequence) private returns (bool wasSet) {
        bytes32 slot = _redeemedSlot(account, sequence);
        uint256 bit = 1 << (sequence & 0xff);
        assembly ("memory-safe") {
            let word := sload(slot)
            wasSet := iszero(iszero(and(word, bit)))
            if iszero(wasSet) { sstore(slot, or(word, bit)) }
        }
    }

    function _redeemedSlot(address account, uint64 sequence) private pure returns (bytes32 slot) {
        bytes32 namespace = REDEEMED_NAMESPACE;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, account)
            mstore(add(m, 0x20), shr(8, sequence))
            mstore(add(m, 0x40), namespace)
            slot := keccak256(m, 0x60)
        }
    }

    /// @dev The epoch's info if its certificates are accepted now; reverts otherwise. An
    ///      epoch is accepted while current (retiredAt == 0) and for `retirementGrace` after.
    function _acceptedEpoch(uint64 epoch) private view returns (EpochInfo memory info) {
        info = _epochs[epoch];
        if (info.members == address(0)) revert UnknownEpoch(epoch);
        if (info.retiredAt != 0) {
            uint64 acceptedUntil = info.retiredAt + retirementGrace;
            if (block.timestamp >= acceptedUntil) revert EpochExpired(epoch, acceptedUntil);
        }
    }

    /// @dev Requires `votes` to be valid signatures of `digest` by the members that
    ///      `signers` names, in ascending index order, and at least a quorum of them.
    ///      The loop is assembly because it runs three or more times per certificate;
    ///      it only reports, and the reverts below name the failure.
    function _checkVotes(
        bytes32 digest,
        EpochInfo memory info,
        bytes memory members,
        uint256 signers,
        Signature[] calldata votes
    ) private view {
        if (signers >> info.size != 0) revert SignerOutOfRange(signers, info.size);
        uint256 count = votes.length;
        if (count < info.quorum) revert InsufficientQuorum(count, info.quorum);
        uint256 failure; // a VoteFailure
        uint256 failedAt; // index of the failing vote
        address expected; // the member whose vote failedAt should be
        address signer; // whom it recovers to
        assembly ("memory-safe") {
            let m := mload(0x40) // ecrecover input, in free memory that is not kept
            mstore(m, digest)
            let packed := add(members, 32)
            let index := 0 // the next candidate bit of `signers`
            let p := votes.offset
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                for {} and(lt(index, 256), iszero(and(shr(index, signers), 1))) { index := add(index, 1) } {}
                if iszero(lt(index, 256)) {
                    failure := 1
                    failedAt := i
                    break
                }
                expected := shr(96, mload(add(packed, mul(index, 20))))
                index := add(index, 1)
                let vs := calldataload(add(p, 0x20))
                let s := and(vs, 0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff)
                if gt(s, HALF_ORDER) {
                    failure := 2
                    failedAt := i
                    break
                }
                mstore(add(m, 0x20), add(shr(255, vs), 27))
                mstore(add(m, 0x40), calldataload(p))
                mstore(add(m, 0x60), s)
                mstore(0x00, 0)
                pop(staticcall(gas(), 0x01, m, 0x80, 0x00, 0x20))
                signer := mload(0x00)
                if iszero(signer) {
                    failure := 3
                    failedAt := i
                    break
                }
                if iszero(eq(signer, expected)) {
                    failure := 4
                    failedAt := i
                    break
                }
                p := add(p, 0x40)
            }
            if iszero(failure) { if shr(index, signers) { failure := 1 } }
        }
        if (failure != 0) {
            if (failure == 1) revert VoteCountMismatch(signers, count);
            if (failure == 2) revert HighSVoteSignature(failedAt);
            if (failure == 3) revert InvalidVoteSignature(failedAt);
            revert VoteNotByMember(failedAt, expected, signer);
        }
    }

    /// @dev The signer of `digest` by the compact signature (r, vs), the `index`-th given;
    ///      reverts on a high s or a signature that recovers to no address.
    function _recover(bytes32 digest, bytes32 r, bytes32 vs, uint256 index) private view returns (address signer) {
        uint256 s = uint256(vs) & ((1 << 255) - 1);
        if (s > HALF_ORDER) revert HighSVoteSignature(index);
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, digest)
            mstore(add(m, 0x20), add(shr(255, vs), 27))
            mstore(add(m, 0x40), r)
            mstore(add(m, 0x60), s)
            mstore(0x00, 0)
            pop(staticcall(gas(), 0x01, m, 0x80, 0x00, 0x20))
            signer := mload(0x00)
        }
        if (signer == address(0)) revert InvalidVoteSignature(index);
    }

    /// @dev Deploys a data contract whose code is STOP followed by the packed member addresses.
    function _storeMembers(address[] calldata members) private returns (address pointer) {
        uint256 n = members.length;
        uint256 length = 1 + 20 * n;
        bytes memory data = new bytes(length + 12); // 12 bytes of slack for the last mstore
        for (uint256 i = 0; i < n; ++i) {
            address member = members[i];
            assembly ("memory-safe") {
                mstore(add(add(data, 33), mul(i, 20)), shl(96, member))
            }
        }
        assembly ("memory-safe") {
            mstore(data, length)
        }
        // Init code: PUSH2 len, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN; then the data.
        bytes memory init = abi.encodePacked(hex"61", uint16(data.length), hex"80600c6000396000f3", data);
        assembly ("memory-safe") {
            pointer := create(0, add(init, 32), mload(init))
        }
        if (pointer == address(0)) revert CommitteeStoreFailed();
    }

    /// @dev The packed member addresses stored by {_storeMembers}.
    function _loadMembers(address pointer, uint256 size) private view returns (bytes memory members) {
        members = new bytes(size * 20);
        assembly ("memory-safe") {
            extcodecopy(pointer, add(members, 32), 1, mul(size, 20))
        }
    }

    // ------------------------------------------------------------------ bonds and slashing

    /// @notice Adds `amount` of the bond token, paid by the caller, to `member`'s bond.
    function bond(address member, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (member == address(0)) revert ZeroAddress();
        Bond storage b = bonds[member];
        if (b.slashed) revert MemberSlashed(member);
        uint256 total = b.amount + amount;
        b.amount = total;
        emit Bonded(member, msg.sender, amount, total);
        bondToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Starts the unbonding delay of the caller's bond. Not while in the current committee.
    function requestUnbond() external {
        Bond storage b = bonds[msg.sender];
        if (b.amount == 0) revert NoBond(msg.sender);
        if (_memberSlot[currentEpoch][msg.sender] != 0) revert StillInCurrentCommittee(msg.sender);
        uint64 now_ = uint64(block.timestamp);
        b.unbondRequestedAt = now_;
        emit UnbondRequested(msg.sender, now_ + unbondingDelay);
    }

    /// @notice Pays the caller's whole bond to `to` once the unbonding delay has passed.
    function withdrawBond(address to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        Bond storage b = bonds[msg.sender];
        uint64 requestedAt = b.unbondRequestedAt;
        if (requestedAt == 0) revert UnbondNotRequested(msg.sender);
        uint64 availableAt = requestedAt + unbondingDelay;
        if (block.timestamp < availableAt) revert UnbondingPending(msg.sender, availableAt);
        uint256 amount = b.amount;
        b.amount = 0;
        b.unbondRequestedAt = 0;
        emit BondWithdrawn(msg.sender, to, amount);
        bondToken.safeTransfer(to, amount);
    }

    /// @notice Proves that `member` voted for two different orders at one (account, sequence)
    ///         and slashes its whole bond: `slashRewardBps` of it to the caller, the rest to
    ///         the treasury. The member can never join a committee again.
    function slashEquivocation(
        address member,
        Order calldata a,
        uint64 epochA,
        Signature calldata voteA,
        Order calldata b,
        uint64 epochB,
        Signature calldata voteB
    ) external nonReentrant {
        if (a.account != b.account || a.sequence != b.sequence) revert NotEquivocation();
        bytes32 digestA = _orderDigest(a);
        bytes32 digestB = _orderDigest(b);
        if (digestA == digestB) revert NotEquivocation();
        bytes32 domain = _domainSeparatorV4();
        _requireVoteBy(member, _voteDigest(domain, digestA, epochA), voteA, 0);
        _requireVoteBy(member, _voteDigest(domain, digestB, epochB), voteB, 1);

        Bond storage bnd = bonds[member];
        uint256 amount = bnd.amount;
        if (amount == 0) revert NothingToSlash(member);
        bnd.amount = 0;
        bnd.unbondRequestedAt = 0;
        bnd.slashed = true;
        uint256 reward = (amount * slashRewardBps) / BPS;
        emit Slashed(member, msg.sender, amount, reward);
        if (reward != 0) bondToken.safeTransfer(msg.sender, reward);
        if (amount != reward) bondToken.safeTransfer(treasury, amount - reward);
    }

    function _requireVoteBy(address member, bytes32 digest, Signature calldata sig, uint256 index) private view {
        if (_recover(digest, sig.r, sig.vs, index) != member) revert InvalidVoteSignature(index);
    }

    // ------------------------------------------------------------------ views

    /// @notice The committee of `epoch` (retiredAt is 0 while it is current).
    function committee(uint64 epoch)
        external
        view
        returns (address[] memory members, string[] memory endpoints, uint64 quorum, uint64 retiredAt)
    {
        EpochInfo memory info = _epochs[epoch];
        if (info.members == address(0)) revert UnknownEpoch(epoch);
        bytes memory packed = _loadMembers(info.members, info.size);
        members = new address[](info.size);
        for (uint256 i = 0; i < info.size; ++i) {
            address member;
            assembly ("memory-safe") {
                member := shr(96, mload(add(add(packed, 32), mul(i, 20))))
            }
            members[i] = member;
        }
        return (members, _endpoints[epoch], info.quorum, info.retiredAt);
    }

    function isMember(uint64 epoch, address account) external view returns (bool) {
        return _memberSlot[epoch][account] != 0;
    }

    function isRedeemed(address account, uint64 sequence) external view returns (bool) {
        bytes32 slot = _redeemedSlot(account, sequence);
        uint256 word;
        assembly ("memory-safe") {
            word := sload(slot)
        }
        return word & (1 << (sequence & 0xff)) != 0;
    }

    /// @notice Whether certificates of `epoch` are accepted now, and until when (0: while current).
    function epochAcceptance(uint64 epoch) external view returns (bool accepted, uint64 acceptedUntil) {
        EpochInfo memory info = _epochs[epoch];
        if (info.members == address(0)) return (false, 0);
        if (info.retiredAt == 0) return (true, 0);
        acceptedUntil = info.retiredAt + retirementGrace;
        return (block.timestamp < acceptedUntil, acceptedUntil);
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice EIP-712 digest of a Withdrawal order (what the owner signs).
    function withdrawalDigest(Withdrawal calldata w) external view returns (bytes32) {
        return _withdrawalDigest(_domainSeparatorV4(), w.account, w.recipient, w.token, w.amount, w.sequence);
    }

    /// @notice EIP-712 digest of an order of either kind.
    function orderDigest(Order calldata order) external view returns (bytes32) {
        return _orderDigest(order);
    }

    /// @notice EIP-712 digest of a Vote (what a committee member signs).
    function voteDigest(bytes32 order, uint64 epoch) external view returns (bytes32) {
        return _voteDigest(_domainSeparatorV4(), order, epoch);
    }

    // ------------------------------------------------------------------ hashing

    /// @dev EIP-712: keccak256("\x19\x01" ‖ domainSeparator ‖ structHash), in scratch memory.
    function _typedDigest(bytes32 domain, bytes32 structHash) private pure returns (bytes32 digest) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x1901)
            mstore(add(m, 0x20), domain)
            mstore(add(m, 0x40), structHash)
            digest := keccak256(add(m, 0x1e), 0x42)
        }
    }

    function _withdrawalDigest(
        bytes32 domain,
        address account,
        address recipient,
        address token,
        uint256 amount,
        uint64 sequence
    ) private pure returns (bytes32) {
        bytes32 typehash = WITHDRAWAL_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), account)
            mstore(add(m, 0x40), recipient)
            mstore(add(m, 0x60), token)
            mstore(add(m, 0x80), amount)
            mstore(add(m, 0xa0), sequence)
            structHash := keccak256(m, 0xc0)
        }
        return _typedDigest(domain, structHash);
    }

    function _orderDigest(Order calldata o) private view returns (bytes32) {
        bytes32 structHash;
        if (o.kind == OrderKind.Transfer) {
            structHash =
                keccak256(abi.encode(TRANSFER_TYPEHASH, o.account, o.counterparty, o.token, o.amount, o.sequence, o.ref));
        } else {
            if (o.ref != bytes32(0)) revert InvalidOrder();
            structHash =
                keccak256(abi.encode(WITHDRAWAL_TYPEHASH, o.account, o.counterparty, o.token, o.amount, o.sequence));
        }
        return _typedDigest(_domainSeparatorV4(), structHash);
    }

    function _voteDigest(bytes32 domain, bytes32 order, uint64 epoch) private pure returns (bytes32) {
        bytes32 typehash = VOTE_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), order)
            mstore(add(m, 0x40), epoch)
            structHash := keccak256(m, 0x60)
        }
        return _typedDigest(domain, structHash);
    }
}
