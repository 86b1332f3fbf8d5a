//! Canonical BCS encoding without `std`.
//!
//! Every hash and signature in Quorum is computed over the BCS bytes of a value. The `bcs` crate
//! needs `std`, so the core carries its own serde `Serializer` that writes exactly the same bytes
//! into any [`Sink`]: a `Vec<u8>`, or a hasher so that hashing never materialises the encoding.
//! Equality with `bcs::to_bytes` is checked by the tests of this module.
//!
//! Decoding is not needed in the core (it does no I/O); the I/O crates decode with `bcs`.

use alloc::vec::Vec;
use core::fmt;

use serde::ser::{self, Serialize};

/// Longest sequence BCS accepts (its `MAX_SEQUENCE_LENGTH`), in elements.
pub(crate) const MAX_SEQUENCE_LENGTH: usize = (1 << 31) - 1;

/// Deepest nesting of containers BCS accepts (its `MAX_CONTAINER_DEPTH`).
pub(crate) const MAX_CONTAINER_DEPTH: usize = 500;

/// Why a value could not be encoded canonically.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A sequence, map or string longer than BCS accepts (2³¹ − 1 elements).
    #[error("sequence of {0} elements exceeds the BCS maximum")]
    SequenceTooLong(usize),
    /// Containers nested deeper than BCS accepts (500 levels).
    #[error("containers nested deeper than the BCS maximum of {MAX_CONTAINER_DEPTH}")]
    TooDeep,
    /// A sequence or map whose length was not announced up front.
    #[error("sequence without a known length")]
    MissingLength,
    /// Floating point values have no canonical encoding.
    #[error("floating point values are not supported")]
    FloatNotSupported,
    /// A type that BCS does not encode (for example `char` keys or `i128` in some positions).
    #[error("value not supported by BCS: {0}")]
    NotSupported(&'static str),
    /// An error raised by a `Serialize` implementation.
    #[error("custom serialization error")]
    Custom,
}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        EncodeError::Custom
    }
}

/// Where encoded bytes go.
pub(crate) trait Sink {
    /// Appends bytes.
    fn write(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn write(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for sha2::Sha256 {
    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
}

/// Encodes `value` as BCS bytes.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Streams the BCS encoding of `value` into `sink`.
pub(crate) fn encode_into<T: Serialize + ?Sized, S: Sink>(
    value: &T,
    sink: &mut S,
) -> Result<(), EncodeError> {
    value.serialize(Encoder { sink, depth: 0 })
}

/// Returns the length of the BCS encoding of `value`, without allocating it.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, EncodeError> {
    let mut counter = Counter(0);
    encode_into(value, &mut counter)?;
    Ok(counter.0)
}

struct Counter(usize);

impl Sink for Counter {
    fn write(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

fn write_uleb128<S: Sink>(sink: &mut S, mut value: u32) {
    let mut buf = [0u8; 5];
    let mut len = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[len] = byte;
            len += 1;
            break;
        }
        buf[len] = byte | 0x80;
        len += 1;
    }
    sink.write(&buf[..len]);
}

fn write_length<S: Sink>(sink: &mut S, len: usize) -> Result<(), EncodeError> {
    if len > MAX_SEQUENCE_LENGTH {
        return Err(EncodeError::SequenceTooLong(len));
    }
    // The bound above keeps the length within u32.
    write_uleb128(sink, len as u32);
    Ok(())
}

struct Encoder<'a, S: Sink> {
    sink: &'a mut S,
    depth: usize,
}

impl<'a, S: Sink> Encoder<'a, S> {
    fn nested(self) -> Result<Self, EncodeError> {
        if self.depth >= MAX_CONTAINER_DEPTH {
            return Err(EncodeError::TooDeep);
        }
        Ok(Encoder {
            sink: self.sink,
            depth: self.depth + 1,
        })
    }
}

/// Serialises the elements of a sequence, tuple or struct one after another.
struct Compound<'a, S: Sink> {
    sink: &'a mut S,
    depth: usize,
}

impl<'a, S: Sink> Compound<'a, S> {
    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        value.serialize(Encoder {
            sink: &mut *self.sink,
            depth: self.depth,
        })
    }
}

/// Serialises a map: entries are buffered, then written sorted by their key bytes, as BCS does.
struct MapEncoder<'a, S: Sink> {
    sink: &'a mut S,
    depth: usize,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    next_key: Option<Vec<u8>>,
}

impl<'a, S: Sink> ser::Serializer for Encoder<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    type SerializeSeq = Compound<'a, S>;
    type SerializeTuple = Compound<'a, S>;
    type SerializeTupleStruct = Compound<'a, S>;
    type SerializeTupleVariant = Compound<'a, S>;
    type SerializeMap = MapEncoder<'a, S>;
    type SerializeStruct = Compound<'a, S>;
    type SerializeStructVariant = Compound<'a, S>;

    fn serialize_bool(self, v: bool) -> Result<(), EncodeError> {
        self.sink.write(&[u8::from(v)]);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), EncodeError> {
        self.sink.write(&[v]);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), EncodeError> {
        self.sink.write(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, _v: f32) -> Result<(), EncodeError> {
        Err(EncodeError::FloatNotSupported)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), EncodeError> {
        Err(EncodeError::FloatNotSupported)
    }
    fn serialize_char(self, _v: char) -> Result<(), EncodeError> {
        Err(EncodeError::NotSupported("char"))
    }
    fn serialize_str(self, v: &str) -> Result<(), EncodeError> {
        self.serialize_bytes(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodeError> {
        write_length(self.sink, v.len())?;
        self.sink.write(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), EncodeError> {
        self.sink.write(&[0]);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodeError> {
        self.sink.write(&[1]);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), EncodeError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodeError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
    ) -> Result<(), EncodeError> {
        write_uleb128(self.sink, variant_index);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let inner = self.nested()?;
        value.serialize(inner)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let inner = self.nested()?;
        write_uleb128(inner.sink, variant_index);
        value.serialize(inner)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, S>, EncodeError> {
        let len = len.ok_or(EncodeError::MissingLength)?;
        write_length(self.sink, len)?;
        let inner = self.nested()?;
        Ok(Compound {
            sink: inner.sink,
            depth: inner.depth,
        })
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a, S>, EncodeError> {
        let inner = self.nested()?;
        Ok(Compound {
            sink: inner.sink,
            depth: inner.depth,
        })
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, EncodeError> {
        let inner = self.nested()?;
        Ok(Compound {
            sink: inner.sink,
            depth: inner.depth,
        })
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, EncodeError> {
        let inner = self.nested()?;
        write_uleb128(inner.sink, variant_index);
        Ok(Compound {
            sink: inner.sink,
            depth: inner.depth,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapEncoder<'a, S>, EncodeError> {
        let len = len.ok_or(EncodeError::MissingLength)?;
        if len > MAX_SEQUENCE_LENGTH {
            return Err(EncodeError::SequenceTooLong(len));
        }
        let inner = self.nested()?;
        Ok(MapEncoder {
            sink: inner.sink,
            depth: inner.depth,
            entries: Vec::with_capacity(len.min(1024)),
            next_key: None,
        })
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, EncodeError> {
        let inner = self.nested()?;
        Ok(Compound {
            sink: inner.sink,
            depth: inner.depth,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, S>, EncodeError> {
        let inner = self.nested()?;
        write_uleb128(inner.sink, variant_index);
        Ok(Compound {
            sink: inner.sink,
            depth: inner.depth,
        })
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl<'a, S: Sink> ser::SerializeSeq for Compound<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl<'a, S: Sink> ser::SerializeTuple for Compound<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl<'a, S: Sink> ser::SerializeTupleStruct for Compound<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl<'a, S: Sink> ser::SerializeTupleVariant for Compound<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl<'a, S: Sink> ser::SerializeStruct for Compound<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl<'a, S: Sink> ser::SerializeStructVariant for Compound<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        self.element(value)
    }
    fn end(self) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl<'a, S: Sink> ser::SerializeMap for MapEncoder<'a, S> {
    type Ok = ();
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        let mut bytes = Vec::new();
        key.serialize(Encoder {
            sink: &mut bytes,
            depth: self.depth,
        })?;
        self.next_key = Some(bytes);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let key = self.next_key.take().ok_or(EncodeError::Custom)?;
        let mut bytes = Vec::new();
        value.serialize(Encoder {
            sink: &mut bytes,
            depth: self.depth,
        })?;
        self.entries.push((key, bytes));
        Ok(())
    }
    fn end(mut self) -> Result<(), EncodeError> {
        // BCS orders map entries by the lexicographic order of their encoded keys; a repeated key
        // keeps a single entry.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        self.entries.dedup_by(|a, b| a.0 == b.0);
        write_length(self.sink, self.entries.len())?;
        for (key, value) in &self.entries {
            self.sink.write(key);
            self.sink.write(value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::String;
    use alloc::vec;
    use proptest::prelude::*;
    use serde::Serialize;

    #[derive(Serialize, Debug, Clone)]
    enum Shape {
        Empty,
        Circle(u32),
        Rect { w: u16, h: u16 },
        Pair(u8, i64),
    }

    #[derive(Serialize, Debug, Clone)]
    struct Record {
        flag: bool,
        name: String,
        tags: Vec<u8>,
        maybe: Option<u128>,
        shapes: Vec<Shape>,
        map: BTreeMap<i32, String>,
        fixed: [u8; 4],
        unit: (),
    }

    #[test]
    fn known_answers() {
        // Hand-computed BCS bytes.
        assert_eq!(to_bytes(&1u64).unwrap(), vec![1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(to_bytes(&0x0102_0304u32).unwrap(), vec![4, 3, 2, 1]);
        assert_eq!(to_bytes(&-1i16).unwrap(), vec![0xff, 0xff]);
        assert_eq!(to_bytes(&true).unwrap(), vec![1]);
        assert_eq!(to_bytes(&Some(7u8)).unwrap(), vec![1, 7]);
        assert_eq!(to_bytes(&None::<u8>).unwrap(), vec![0]);
        assert_eq!(to_bytes("abc").unwrap(), vec![3, b'a', b'b', b'c']);
        // ULEB128 length of 300 = 0xac 0x02.
        let long = vec![0u8; 300];
        assert_eq!(&to_bytes(&long).unwrap()[..2], &[0xac, 0x02]);
        assert_eq!(to_bytes(&Shape::Empty).unwrap(), vec![0]);
        assert_eq!(to_bytes(&Shape::Circle(5)).unwrap(), vec![1, 5, 0, 0, 0]);
        assert_eq!(
            to_bytes(&Shape::Rect { w: 1, h: 2 }).unwrap(),
            vec![2, 1, 0, 2, 0]
        );
        // Map entries sorted by encoded key bytes: -1i32 = ff ff ff ff sorts after 1 = 01 00 00 00.
        let mut map = BTreeMap::new();
        map.insert(-1i32, 9u8);
        map.insert(1i32, 8u8);
        assert_eq!(
            to_bytes(&map).unwrap(),
            vec![2, 1, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 9]
        );
        assert_eq!(to_bytes(&[1u8, 2, 3, 4]).unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn floats_are_refused() {
        assert_eq!(to_bytes(&1.5f64), Err(EncodeError::FloatNotSupported));
    }

    #[test]
    fn encoded_len_matches() {
        let value = (vec![1u32; 200], String::from("hello"));
        assert_eq!(
            encoded_len(&value).unwrap(),
            to_bytes(&value).unwrap().len()
        );
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Empty),
            any::<u32>().prop_map(Shape::Circle),
            (any::<u16>(), any::<u16>()).prop_map(|(w, h)| Shape::Rect { w, h }),
            (any::<u8>(), any::<i64>()).prop_map(|(a, b)| Shape::Pair(a, b)),
        ]
    }

    proptest! {
        #[test]
        fn equals_bcs(
            flag in any::<bool>(),
            name in ".{0,40}",
            tags in proptest::collection::vec(any::<u8>(), 0..300),
            maybe in any::<Option<u128>>(),
            shapes in proptest::collection::vec(shape(), 0..20),
            map in proptest::collection::btree_map(any::<i32>(), ".{0,8}", 0..10),
            fixed in any::<[u8; 4]>(),
        ) {
            let record = Record { flag, name, tags, maybe, shapes, map, fixed, unit: () };
            prop_assert_eq!(to_bytes(&record).unwrap(), bcs::to_bytes(&record).unwrap());
        }
    }
}
