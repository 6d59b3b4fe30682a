//! Time zones derived from a number when the CSV gives none.
//!
//! The approximation, documented in the README: a NANP number (+1) takes the zone of its area
//! code's main population centre (an area code that straddles a zone line, such as 850 in the
//! Florida panhandle or 208 in Idaho, gets the zone most of its numbers are in; mobile numbers
//! keep the area code of where they were issued, not where the phone is). Any other country
//! takes its main (capital's) zone. Non-geographic +1 codes (toll-free 8XX, 500, 900...) and
//! countries not in the table derive nothing: such rows need a `timezone` column.

/// The zone of a NANP area code, or None for a code not in the table.
pub fn nanp_zone(area: u16) -> Option<&'static str> {
    NANP.iter()
        .find(|(_, codes)| codes.contains(&area))
        .map(|(zone, _)| *zone)
}

/// Area codes by zone (US, Canada and the US territories; NANP countries of the Caribbean are
/// found by country instead). Current codes as of the 2025 NANPA list, overlays included.
const NANP: &[(&str, &[u16])] = &[
    (
        "America/New_York",
        &[
            // CT, DE, DC, FL (east), GA, ME, MD, MA, NH, NJ, NY, NC, OH, PA, RI, SC, TN (east),
            // VT, VA, WV
            203, 475, 860, 959, 302, 202, 771, 239, 305, 321, 324, 352, 386, 407, 561, 645, 656,
            689, 727, 728, 754, 772, 786, 813, 863, 904, 941, 954, 229, 404, 470, 478, 678, 706,
            762, 770, 912, 943, 207, 227, 240, 301, 410, 443, 667, 339, 351, 413, 508, 617, 774,
            781, 857, 978, 603, 201, 551, 609, 640, 732, 848, 856, 862, 908, 973, 212, 315, 329,
            332, 347, 363, 516, 518, 585, 607, 624, 631, 646, 680, 716, 718, 838, 845, 914, 917,
            929, 934, 252, 336, 472, 704, 743, 828, 910, 919, 980, 984, 216, 220, 234, 283, 326,
            330, 380, 419, 436, 440, 513, 567, 614, 740, 937, 215, 223, 267, 272, 412, 445, 484,
            570, 582, 610, 717, 724, 814, 835, 878, 401, 803, 821, 839, 843, 854, 864, 423, 865,
            802, 276, 434, 540, 571, 686, 703, 757, 804, 826, 948, 304, 681,
        ],
    ),
    (
        "America/Detroit",
        &[
            231, 248, 269, 313, 517, 586, 616, 679, 734, 810, 906, 947, 989,
        ],
    ),
    (
        "America/Indiana/Indianapolis",
        &[260, 317, 463, 574, 765, 812, 930],
    ),
    ("America/Kentucky/Louisville", &[502, 606, 859]),
    (
        "America/Toronto",
        &[
            // Ontario, Quebec
            226, 249, 289, 343, 365, 382, 416, 437, 519, 548, 613, 647, 683, 705, 742, 753, 807,
            905, 942, 263, 354, 367, 418, 438, 450, 468, 514, 579, 581, 819, 873,
        ],
    ),
    ("America/Halifax", &[782, 902]),
    ("America/Moncton", &[428, 506]),
    ("America/St_Johns", &[709, 879]),
    (
        "America/Chicago",
        &[
            // AL, AR, FL panhandle, IL, IN (northwest), IA, KS, KY (west), LA, MN, MS, MO, NE,
            // ND, OK, SD, TN (middle, west), TX, WI
            205, 251, 256, 334, 483, 659, 938, 327, 479, 501, 870, 448, 850, 217, 224, 309, 312,
            331, 447, 464, 618, 630, 708, 730, 773, 779, 815, 847, 861, 872, 219, 319, 515, 563,
            641, 712, 316, 620, 785, 913, 270, 364, 225, 318, 337, 457, 504, 985, 218, 320, 507,
            612, 651, 763, 924, 952, 228, 601, 662, 769, 235, 314, 417, 557, 573, 636, 660, 816,
            975, 308, 402, 531, 701, 405, 539, 572, 580, 918, 605, 615, 629, 731, 901, 931, 210,
            214, 254, 281, 325, 346, 361, 409, 430, 432, 469, 512, 682, 713, 726, 737, 806, 817,
            830, 832, 903, 936, 940, 945, 956, 972, 979, 262, 274, 353, 414, 534, 608, 715, 920,
        ],
    ),
    ("America/Winnipeg", &[204, 431, 584]),
    ("America/Regina", &[306, 474, 639]),
    (
        "America/Denver",
        &[
            303, 719, 720, 970, 983, 406, 505, 575, 385, 435, 801, 307, 915,
        ],
    ),
    ("America/Boise", &[208, 986]),
    ("America/Phoenix", &[480, 520, 602, 623, 928]),
    ("America/Edmonton", &[368, 403, 587, 780, 825, 867]),
    (
        "America/Los_Angeles",
        &[
            // CA, NV, OR, WA
            209, 213, 279, 310, 323, 341, 350, 369, 408, 415, 424, 442, 510, 530, 559, 562, 619,
            626, 628, 650, 657, 661, 669, 707, 714, 738, 747, 760, 805, 818, 820, 831, 837, 840,
            858, 909, 916, 925, 949, 951, 702, 725, 775, 458, 503, 541, 971, 206, 253, 360, 425,
            509, 564,
        ],
    ),
    ("America/Vancouver", &[236, 250, 257, 604, 672, 778]),
    ("America/Anchorage", &[907]),
    ("Pacific/Honolulu", &[808]),
    ("America/Puerto_Rico", &[787, 939]),
    ("America/St_Thomas", &[340]),
    ("Pacific/Guam", &[671]),
    ("Pacific/Saipan", &[670]),
    ("Pacific/Pago_Pago", &[684]),
];

/// A country's main zone (ISO 3166 alpha-2), or None for a country not in the table.
pub fn country_zone(iso: &str) -> Option<&'static str> {
    COUNTRIES.iter().find(|(c, _)| *c == iso).map(|(_, z)| *z)
}

const COUNTRIES: &[(&str, &str)] = &[
    ("US", "America/New_York"),
    ("CA", "America/Toronto"),
    ("PR", "America/Puerto_Rico"),
    ("DO", "America/Santo_Domingo"),
    ("JM", "America/Jamaica"),
    ("BS", "America/Nassau"),
    ("BB", "America/Barbados"),
    ("TT", "America/Port_of_Spain"),
    ("BM", "Atlantic/Bermuda"),
    ("KY", "America/Cayman"),
    ("AG", "America/Antigua"),
    ("DM", "America/Dominica"),
    ("GD", "America/Grenada"),
    ("KN", "America/St_Kitts"),
    ("LC", "America/St_Lucia"),
    ("VC", "America/St_Vincent"),
    ("VG", "America/Tortola"),
    ("VI", "America/St_Thomas"),
    ("TC", "America/Grand_Turk"),
    ("AI", "America/Anguilla"),
    ("MS", "America/Montserrat"),
    ("SX", "America/Lower_Princes"),
    ("GU", "Pacific/Guam"),
    ("MP", "Pacific/Saipan"),
    ("AS", "Pacific/Pago_Pago"),
    ("MX", "America/Mexico_City"),
    ("BR", "America/Sao_Paulo"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("CL", "America/Santiago"),
    ("CO", "America/Bogota"),
    ("PE", "America/Lima"),
    ("VE", "America/Caracas"),
    ("EC", "America/Guayaquil"),
    ("UY", "America/Montevideo"),
    ("PY", "America/Asuncion"),
    ("BO", "America/La_Paz"),
    ("CR", "America/Costa_Rica"),
    ("PA", "America/Panama"),
    ("GT", "America/Guatemala"),
    ("SV", "America/El_Salvador"),
    ("HN", "America/Tegucigalpa"),
    ("NI", "America/Managua"),
    ("GB", "Europe/London"),
    ("IE", "Europe/Dublin"),
    ("FR", "Europe/Paris"),
    ("DE", "Europe/Berlin"),
    ("ES", "Europe/Madrid"),
    ("PT", "Europe/Lisbon"),
    ("IT", "Europe/Rome"),
    ("NL", "Europe/Amsterdam"),
    ("BE", "Europe/Brussels"),
    ("LU", "Europe/Luxembourg"),
    ("CH", "Europe/Zurich"),
    ("AT", "Europe/Vienna"),
    ("DK", "Europe/Copenhagen"),
    ("SE", "Europe/Stockholm"),
    ("NO", "Europe/Oslo"),
    ("FI", "Europe/Helsinki"),
    ("IS", "Atlantic/Reykjavik"),
    ("PL", "Europe/Warsaw"),
    ("CZ", "Europe/Prague"),
    ("SK", "Europe/Bratislava"),
    ("HU", "Europe/Budapest"),
    ("RO", "Europe/Bucharest"),
    ("BG", "Europe/Sofia"),
    ("GR", "Europe/Athens"),
    ("HR", "Europe/Zagreb"),
    ("SI", "Europe/Ljubljana"),
    ("RS", "Europe/Belgrade"),
    ("UA", "Europe/Kyiv"),
    ("LT", "Europe/Vilnius"),
    ("LV", "Europe/Riga"),
    ("EE", "Europe/Tallinn"),
    ("TR", "Europe/Istanbul"),
    ("IL", "Asia/Jerusalem"),
    ("AE", "Asia/Dubai"),
    ("SA", "Asia/Riyadh"),
    ("EG", "Africa/Cairo"),
    ("MA", "Africa/Casablanca"),
    ("NG", "Africa/Lagos"),
    ("KE", "Africa/Nairobi"),
    ("ZA", "Africa/Johannesburg"),
    ("IN", "Asia/Kolkata"),
    ("PK", "Asia/Karachi"),
    ("BD", "Asia/Dhaka"),
    ("LK", "Asia/Colombo"),
    ("CN", "Asia/Shanghai"),
    ("HK", "Asia/Hong_Kong"),
    ("TW", "Asia/Taipei"),
    ("JP", "Asia/Tokyo"),
    ("KR", "Asia/Seoul"),
    ("SG", "Asia/Singapore"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("TH", "Asia/Bangkok"),
    ("VN", "Asia/Ho_Chi_Minh"),
    ("PH", "Asia/Manila"),
    ("ID", "Asia/Jakarta"),
    ("AU", "Australia/Sydney"),
    ("NZ", "Pacific/Auckland"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_in_the_tables_resolves() {
        for (zone, _) in NANP {
            assert!(
                switchyard_engine::dialer::window::zone(zone).is_some(),
                "{zone}"
            );
        }
        for (_, zone) in COUNTRIES {
            assert!(
                switchyard_engine::dialer::window::zone(zone).is_some(),
                "{zone}"
            );
        }
    }

    #[test]
    fn no_area_code_is_in_two_zones() {
        let mut seen = std::collections::HashMap::new();
        for (zone, codes) in NANP {
            for c in *codes {
                assert!(seen.insert(*c, *zone).is_none(), "area code {c} twice");
            }
        }
        assert!(seen.len() > 380, "{} area codes", seen.len());
    }

    #[test]
    fn area_codes_map_to_their_zones() {
        assert_eq!(nanp_zone(212), Some("America/New_York"));
        assert_eq!(nanp_zone(312), Some("America/Chicago"));
        assert_eq!(nanp_zone(303), Some("America/Denver"));
        assert_eq!(nanp_zone(602), Some("America/Phoenix"));
        assert_eq!(nanp_zone(415), Some("America/Los_Angeles"));
        assert_eq!(nanp_zone(808), Some("Pacific/Honolulu"));
        assert_eq!(nanp_zone(800), None);
        assert_eq!(country_zone("GB"), Some("Europe/London"));
    }
}
