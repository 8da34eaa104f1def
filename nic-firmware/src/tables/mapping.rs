//! The exact-match mapping table: (VNI, IPv4) -> (MAC, local VF or remote host).
use super::TableError;

/// Key of a mapping: the VPC's VNI and an instance address (host byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MappingKey {
    pub vni: u32,
    pub ip: u32,
}

/// Where a mapped instance lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// On this NIC's VF.
    LocalVf(u16),
    /// On another host, by underlay IPv4 (host byte order).
    Remote { underlay_ip: u32 },
}

/// The value of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub mac: [u8; 6],
    pub location: Location,
}

/// One bucket of table storage.
#[derive(Clone, Copy, Debug)]
pub struct MappingBucket {
    slot: Option<(MappingKey, Mapping)>,
}

impl MappingBucket {
    /// An empty bucket, to fill storage with.
    pub const EMPTY: MappingBucket = MappingBucket { slot: None };
}

/// The mapping table over storage the platform provides.
pub struct MappingTable<'m> {
    buckets: &'m mut [MappingBucket],
    len: usize,
}

impl<'m> MappingTable<'m> {
    /// Entries one bucket holds.
    pub const SLOTS_PER_BUCKET: usize = 1;

    /// A table over `buckets`, emptied.
    pub fn new(buckets: &'m mut [MappingBucket]) -> Self {
        let mut t = MappingTable { buckets, len: 0 };
        t.clear();
        t
    }

    /// Nominal capacity in entries.
    pub fn capacity(&self) -> usize {
        self.buckets.len().saturating_mul(Self::SLOTS_PER_BUCKET)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.buckets.fill(MappingBucket::EMPTY);
        self.len = 0;
    }

    /// Adds a mapping; `Exists` if the key is there, `Full` if there is no room.
    pub fn insert(&mut self, key: MappingKey, value: Mapping) -> Result<(), TableError> {
        if self.get(key).is_some() {
            return Err(TableError::Exists);
        }
        let free = self
            .buckets
            .iter_mut()
            .find(|b| b.slot.is_none())
            .ok_or(TableError::Full)?;
        free.slot = Some((key, value));
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// Removes a mapping and returns it.
    pub fn remove(&mut self, key: MappingKey) -> Result<Mapping, TableError> {
        let b = self
            .buckets
            .iter_mut()
            .find(|b| matches!(b.slot, Some((k, _)) if k == key))
            .ok_or(TableError::NotFound)?;
        let (_, v) = b.slot.take().ok_or(TableError::NotFound)?;
        self.len = self.len.saturating_sub(1);
        Ok(v)
    }

    /// The mapping for `key`.
    pub fn get(&self, key: MappingKey) -> Option<Mapping> {
        self.buckets.iter().find_map(|b| match b.slot {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        })
    }

    /// Every entry, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (MappingKey, Mapping)> + '_ {
        self.buckets.iter().filter_map(|b| b.slot)
    }
}
