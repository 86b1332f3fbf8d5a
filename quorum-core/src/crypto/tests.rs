//! The verification rule's tests: single and batch checks, bisection, and the RFC 8032
//! vectors.

use super::*;
use alloc::vec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[derive(Serialize)]
struct Msg(u64);
impl BcsHashable for Msg {
    const DOMAIN: &'static str = "TestMsg";
}

fn keys(n: usize, seed: u64) -> Vec<ValidatorSecretKey> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| ValidatorSecretKey::generate(&mut rng))
        .collect()
}

#[test]
fn small_order_table_matches_eight_torsion() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    for point in EIGHT_TORSION.iter() {
        let mut y = point.compress().to_bytes();
        y[31] &= 0x7f;
        assert!(SMALL_ORDER_Y.contains(&y), "missing {y:02x?}");
    }
    for y in SMALL_ORDER_Y {
        assert!(EIGHT_TORSION.iter().any(|p| {
            let mut b = p.compress().to_bytes();
            b[31] &= 0x7f;
            b == y
        }));
    }
}

/// RFC 8032 §7.1 test vectors 1–3 (and the SHA(abc) one), checked with `verify_strict`.
#[test]
fn rfc8032_vectors() {
    let vectors: [(&str, &str, &str, &str); 3] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (secret, public, message, signature) in vectors {
        let secret: [u8; 32] = hex::decode(secret).unwrap().try_into().unwrap();
        let public: [u8; 32] = hex::decode(public).unwrap().try_into().unwrap();
        let message = hex::decode(message).unwrap();
        let signature: [u8; 64] = hex::decode(signature).unwrap().try_into().unwrap();
        let signing = SigningKey::from_bytes(&secret);
        assert_eq!(signing.verifying_key().to_bytes(), public);
        assert_eq!(signing.sign(&message).to_bytes(), signature);
        let key = ValidatorPublicKey::from_bytes(public);
        key.check_strong().unwrap();
        PreparedKey::decode(&public)
            .unwrap()
            .0
            .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
            .unwrap();
        let mut tampered = signature;
        tampered[10] ^= 1;
        assert!(PreparedKey::decode(&public)
            .unwrap()
            .0
            .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&tampered))
            .is_err());
    }
}

#[test]
fn sign_and_verify() {
    let key = &keys(1, 1)[0];
    let signature = key.sign(&Msg(3));
    key.public().verify(&Msg(3), &signature).unwrap();
    assert_eq!(
        key.public().verify(&Msg(4), &signature),
        Err(CryptoError::InvalidSignature)
    );
}

#[test]
fn weak_keys_are_refused() {
    // The identity point is a valid encoding but of small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let key = ValidatorPublicKey::from_bytes(identity);
    assert_eq!(key.check_strong(), Err(CryptoError::WeakKey));
    // A prime-order point plus a point of order 8 has a torsion component.
    let strong = keys(1, 2)[0].public();
    let point = CompressedEdwardsY(*strong.as_bytes()).decompress().unwrap();
    let mixed = point + curve25519_dalek::constants::EIGHT_TORSION[1];
    let mixed = ValidatorPublicKey::from_bytes(mixed.compress().to_bytes());
    assert_eq!(mixed.check_strong(), Err(CryptoError::WeakKey));
    strong.check_strong().unwrap();
    // Neither can be prepared for batch verification, so batch and single checks never
    // meet a key on which their verdicts could differ.
    assert_eq!(PreparedKey::decode(&identity), Err(CryptoError::WeakKey));
    assert_eq!(
        PreparedKey::decode(mixed.as_bytes()),
        Err(CryptoError::WeakKey)
    );
    assert!(PreparedKey::decode(strong.as_bytes()).is_ok());
}

#[test]
fn batch_accepts_good_and_bisection_names_bad() {
    let secrets = keys(40, 3);
    let publics: Vec<_> = secrets
        .iter()
        .map(|k| PreparedKey::decode(k.public().as_bytes()).unwrap())
        .collect();
    let hashes: Vec<_> = (0..40).map(|i| CryptoHash::new(&Msg(i))).collect();
    let mut sigs: Vec<_> = secrets
        .iter()
        .zip(&hashes)
        .map(|(k, h)| k.sign_hash(h))
        .collect();
    let items = |sigs: &Vec<Signature>| -> Vec<(usize, Signature)> {
        sigs.iter().copied().enumerate().collect()
    };
    let check = |sigs: &Vec<Signature>| {
        let owned = items(sigs);
        let batch: Vec<BatchItem<'_>> = owned
            .iter()
            .map(|(i, s)| BatchItem {
                signer: &publics[*i],
                hash: &hashes[*i],
                signature: s,
            })
            .collect();
        verify_batch(&batch)
    };
    assert_eq!(check(&sigs), Ok(()));
    // Signature 5 signs the wrong message, 17 is garbage, 39 has a small-order R.
    sigs[5] = secrets[5].sign_hash(&hashes[6]);
    sigs[17] = Signature::from_bytes(&[7u8; 64]);
    let mut small_r = sigs[39].to_bytes();
    small_r[..32].copy_from_slice(&SMALL_ORDER_Y[1]);
    sigs[39] = Signature::from_bytes(&small_r);
    assert_eq!(check(&sigs), Err(vec![5, 17, 39]));
}

#[test]
fn signature_serde_is_64_raw_bytes() {
    let key = &keys(1, 4)[0];
    let signature = key.sign(&Msg(1));
    let bytes = bcs::to_bytes(&signature).unwrap();
    assert_eq!(bytes, signature.to_bytes().to_vec());
    let back: Signature = bcs::from_bytes(&bytes).unwrap();
    assert_eq!(back, signature);
    let public_bytes = bcs::to_bytes(&key.public()).unwrap();
    assert_eq!(public_bytes, key.public().as_bytes().to_vec());
}
