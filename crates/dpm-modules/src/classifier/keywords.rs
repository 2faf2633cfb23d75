//! The keyword table: every word the classifier recognises (uppercased in digests), with
//! flags, and a case-insensitive lookup from a word's bytes to its [`Kw`] id.
//!
//! `R` marks MariaDB reserved words: they are never identifiers, aliases or operands, and a
//! digest puts a space between them and a following `(` (`IN (...)`, `VALUES (...)`).
//! `F` marks reserved words that are also functions or types (`IF(`, `CHAR(`), written
//! without that space. Words not in this table are identifiers and kept as written.

use std::sync::OnceLock;

/// Reserved word.
const R: u8 = 1;
/// Reserved, but written like a function (`IF(`, `VARCHAR(`).
const F: u8 = 2 | R;
/// Not reserved.
const N: u8 = 0;

macro_rules! keywords {
    ($($name:ident $flags:ident),* $(,)?) => {
        /// A keyword id; `Kw::None` for words that are not keywords and non-word tokens.
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Kw { None, $($name),* }
        /// Keyword names (uppercase) and flags, indexed by `Kw as usize - 1`.
        static TABLE: &[(&str, u8)] = &[$((stringify!($name), $flags)),*];
        const ALL: &[Kw] = &[$(Kw::$name),*];
    };
}

keywords! {
    ABS N, ACTION N, ADD R, AFTER N, AGAINST N, ALGORITHM N, ALL R, ALTER R, ANALYZE R,
    AND R, ANY N, AS R, ASC R, AT N, ATOMIC N, AUTO_INCREMENT N, AVG N, BACKUP N, BEFORE R,
    BEGIN N, BETWEEN R, BIGINT F, BINARY F, BINLOG N, BIT N, BLOB F, BOOLEAN N, BOTH R,
    BY R, CACHE N, CALL R, CASCADE R, CASE R, CAST N, CEIL N, CHAIN N, CHANGE R, CHAR F,
    CHARACTER R, CHARSET N, CHECK R, CHECKSUM N, CLOSE N, COALESCE N, COLLATE R, COLUMN R,
    COLUMNS N, COMMENT N, COMMIT N, COMMITTED N, CONCAT N, CONDITION R, CONNECTION N,
    CONSISTENT N, CONSTRAINT R, CONTINUE R, CONVERT F, COUNT N, CREATE R, CROSS R,
    CURRENT_DATE F, CURRENT_TIME F, CURRENT_TIMESTAMP F, CURRENT_USER F, CURSOR R, DATA N,
    DATABASE F, DATABASES R, DATE N, DATETIME N, DAY N, DEALLOCATE N, DECIMAL F, DECLARE R,
    DEFAULT F, DEFINER N, DELAYED R, DELETE R, DESC R, DESCRIBE R, DIAGNOSTICS N, DISABLE N,
    DISTINCT R, DISTINCTROW R, DIV R, DO N, DOUBLE F, DROP R, DUAL R, DUMPFILE N,
    DUPLICATE N, EACH R, ELSE R, ELSEIF R, ENABLE N, ENCLOSED R, END N, ENGINE N, ENUM N,
    ESCAPE N, ESCAPED R, EVENT N, EVENTS N, EXCEPT R, EXECUTE N, EXISTS R, EXIT R,
    EXPLAIN R, EXTENDED N, EXTRACT N, FALSE R, FETCH R, FIELDS N, FIRST N, FLOAT F, FLOOR N,
    FLUSH N, FOR R, FORCE R, FOREIGN R, FORMAT N, FOUND_ROWS N, FROM R, FULL N, FULLTEXT R,
    FUNCTION N, GET R, GET_LOCK N, GLOBAL N, GRANT R, GRANTS N, GROUP R, GROUP_CONCAT N,
    HANDLER N, HASH N, HAVING R, HELP N, HIGH_PRIORITY R, HOUR N, IDENTIFIED N, IF F,
    IFNULL N, IGNORE R, IMMEDIATE N, IN R, INDEX R, INDEXES N, INFILE R, INNER R, INOUT R,
    INSERT F, INSTALL N, INT F, INTEGER F, INTERSECT R, INTERVAL R, INTO R, INVOKER N, IS R,
    IS_FREE_LOCK N, IS_USED_LOCK N, ISOLATION N, ITERATE R, JOIN R, KEY R, KEYS R, KILL R,
    LAST N, LAST_INSERT_ID N, LASTVAL N, LEADING R, LEAVE R, LEFT F, LENGTH N, LEVEL N,
    LIKE R, LIMIT R, LINES R, LOAD R, LOCAL N, LOCK R, LOGS N, LOOP R, LOW_PRIORITY R,
    LOWER N, MASTER N, MATCH F, MAX N, MEDIUMINT F, MERGE N, MIN N, MINUTE N, MOD F, MODE N,
    MODIFY N, MONTH N, NAMES N, NATURAL R, NEXT N, NEXTVAL N, NO N, NO_WRITE_TO_BINLOG R,
    NONE N, NOT R, NOW N, NULL R, NULLIF N, NUMERIC F, OFFSET N, ON R, ONE N, ONLY N,
    OPEN N, OPTIMIZE R, OPTION R, OPTIONALLY R, OR R, ORDER R, OUT R, OUTER R, OUTFILE R,
    PARTITION R, PASSWORD N, PHASE N, PLUGIN N, PLUGINS N, PREPARE N, PREVIOUS N, PRIMARY R,
    PRIVILEGES N, PROCEDURE R, PROCESSLIST N, PURGE R, QUERY N, QUICK N, RAND N, READ R,
    REAL F, RECOVER N, RECURSIVE R, REFERENCES R, REGEXP R, RELEASE R, RELEASE_ALL_LOCKS N,
    RELEASE_LOCK N, RENAME R, REPAIR N, REPEAT F, REPEATABLE N, REPLACE F, REPLICA N,
    REQUIRE R, RESET N, RESIGNAL R, RESTRICT R, RETURN R, RETURNING R, REVOKE R, RIGHT F,
    RLIKE R, ROLE N, ROLLBACK N, ROLLUP N, ROUND N, ROW N, ROWS N, SAVEPOINT N, SCHEMA R,
    SCHEMAS R, SECOND N, SECURITY N, SELECT R, SEPARATOR R, SEQUENCE N, SERIALIZABLE N,
    SESSION N, SET R, SETVAL N, SHARE N, SHOW R, SHUTDOWN N, SIGNAL R, SIGNED N, SLAVE N,
    SLEEP N, SMALLINT F, SNAPSHOT N, SONAME N, SPATIAL R, SQL R, SQL_BIG_RESULT R,
    SQL_CACHE N, SQL_CALC_FOUND_ROWS R, SQL_NO_CACHE N, SQL_SMALL_RESULT R, START N,
    STARTING R, STATEMENT N, STATUS N, STOP N, STRAIGHT_JOIN R, SUBSTR N, SUBSTRING N,
    SUM N, SUSPEND N, TABLE R, TABLES N, TEMPORARY N, TERMINATED R, TEXT N, THEN R, TIME N,
    TIMESTAMP N, TINYINT F, TO R, TRAILING R, TRANSACTION N, TRIGGER R, TRIM N, TRUE R,
    TRUNCATE N, TYPE N, UNCOMMITTED N, UNDO R, UNINSTALL N, UNION R, UNIQUE R, UNKNOWN N,
    UNLOCK R, UNSIGNED R, UPDATE R, UPPER N, USAGE R, USE R, USER N, USING R, UUID N,
    VALUE N, VALUES F, VARBINARY F, VARCHAR F, VARIABLES N, VIEW N, WARNINGS N, WEEK N,
    WHEN R, WHERE R, WHILE R, WINDOW R, WITH R, WORK N, WRITE R, XA N, XML N, XOR R, YEAR N,
    ZEROFILL R,
}

impl Kw {
    /// The keyword in uppercase (`""` for `Kw::None`).
    #[inline]
    pub fn name(self) -> &'static str {
        match self {
            Kw::None => "",
            k => TABLE[k as usize - 1].0,
        }
    }
    #[inline]
    fn flags(self) -> u8 {
        match self {
            Kw::None => 0,
            k => TABLE[k as usize - 1].1,
        }
    }
    /// A MariaDB reserved word (never an identifier or alias when unquoted).
    #[inline]
    pub fn reserved(self) -> bool {
        self.flags() & R != 0
    }
    /// A reserved word written like a clause keyword: a digest puts a space before a
    /// following `(`.
    #[inline]
    pub fn space_before_paren(self) -> bool {
        self.flags() == R
    }
}

// VALUES is F so that `VALUES(col)` in ON DUPLICATE KEY UPDATE reads like a function; the
// digest writes the folded `VALUES (...)` itself.

const SLOTS: usize = 2048;
const MAX_LEN: usize = 24;

#[inline]
fn hash_upper(w: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in w {
        h = (h ^ u32::from(b.to_ascii_uppercase())).wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 15)) as usize & (SLOTS - 1)
}

fn table() -> &'static [u16; SLOTS] {
    static T: OnceLock<Box<[u16; SLOTS]>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Box::new([0u16; SLOTS]);
        for &k in ALL {
            let name = k.name().as_bytes();
            debug_assert!(name.len() <= MAX_LEN);
            let mut s = hash_upper(name);
            while t[s] != 0 {
                s = (s + 1) & (SLOTS - 1);
            }
            t[s] = k as u16;
        }
        t
    })
}

/// The keyword `w` spells (ASCII case-insensitive), or `Kw::None`.
#[inline]
pub fn lookup(w: &[u8]) -> Kw {
    if w.len() < 2 || w.len() > MAX_LEN || !w[0].is_ascii_alphabetic() {
        return Kw::None;
    }
    let t = table();
    let mut s = hash_upper(w);
    loop {
        let id = t[s];
        if id == 0 {
            return Kw::None;
        }
        let k = ALL[id as usize - 1];
        if k.name().as_bytes().eq_ignore_ascii_case(w) {
            return k;
        }
        s = (s + 1) & (SLOTS - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_round_trips_in_any_case() {
        for &k in ALL {
            assert_eq!(lookup(k.name().as_bytes()), k);
            assert_eq!(lookup(k.name().to_ascii_lowercase().as_bytes()), k);
        }
        assert_eq!(lookup(b"sbtest1"), Kw::None);
        assert_eq!(lookup(b"selects"), Kw::None);
    }

    #[test]
    fn names_are_unique_uppercase_and_fit() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in TABLE {
            assert!(seen.insert(*name), "{name} twice");
            assert_eq!(name.to_ascii_uppercase(), *name);
            assert!(name.len() <= MAX_LEN && name.len() >= 2, "{name}");
        }
    }
}
