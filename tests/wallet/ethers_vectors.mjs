// Recomputes Farthing's EIP-712 vectors with ethers.js v6 (an independent implementation
// in another language) and prints what it finds as JSON on stdout. The comparison with the
// committed vectors is done by tests/wallet/test_vectors_ethers.py, which runs this with
// `node tests/wallet/ethers_vectors.mjs <vectors.json>`.
//
// For every vector: the domain separator (TypedDataEncoder.hashDomain), the struct hash
// (TypedDataEncoder.hashStruct), the digest (TypedDataEncoder.hash), the signer recovered
// from the signature both over the typed data (verifyTypedData) and over the digest
// (recoverAddress), and ethers' own signature of the typed data with the vector's key
// (Wallet.signTypedData; RFC 6979, so it must equal the committed one byte for byte).
// The keys are the vector file's PUBLIC TEST KEYS; nothing here prints a key.

import { readFileSync } from "node:fs";
import { TypedDataEncoder, Wallet, recoverAddress, verifyTypedData, version } from "ethers";

function fields(specs) {
  // "address payer" -> { name: "payer", type: "address" }
  return specs.map((spec) => {
    const [type, name] = spec.split(" ");
    return { name, type };
  });
}

async function main() {
  const path = process.argv[2];
  if (!path) throw new Error("usage: node ethers_vectors.mjs <eip712.json>");
  const file = JSON.parse(readFileSync(path, "utf8"));
  const wallets = file.keys.map((k) => new Wallet(k.privateKey));
  const results = [];
  for (const vector of file.vectors) {
    const primary = vector.primaryType;
    const types = { [primary]: fields(file.types[primary]) };
    const domain = {
      name: file.domain.name,
      version: file.domain.version,
      chainId: BigInt(vector.domain.chainId),
      verifyingContract: vector.domain.verifyingContract,
    };
    const message = vector.message;
    const digest = TypedDataEncoder.hash(domain, types, message);
    results.push({
      name: vector.name,
      primaryType: TypedDataEncoder.getPrimaryType(types),
      encodedType: TypedDataEncoder.from(types).encodeType(primary),
      domainSeparator: TypedDataEncoder.hashDomain(domain),
      structHash: TypedDataEncoder.hashStruct(primary, types, message),
      digest,
      recoveredTyped: verifyTypedData(domain, types, message, vector.signature),
      recoveredDigest: recoverAddress(digest, vector.signature),
      signature: await wallets[vector.key].signTypedData(domain, types, message),
    });
  }
  const out = {
    ethers: version,
    domainType: TypedDataEncoder.from({ EIP712Domain: fields(file.types.EIP712Domain) })
      .encodeType("EIP712Domain"),
    addresses: wallets.map((w) => w.address),
    results,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(`ethers_vectors: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
