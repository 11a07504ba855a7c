//! The declarations behind every component, in the spirit of burn's `Config`: one struct per
//! component, its fields with their defaults and documentation, and the `_target_` names it
//! answers to. From that one declaration come the registry entry ([`crate::ComponentSpec`]), the
//! typed constructor the checker uses, and the Rust literal the code generator emits.

/// Declares a component config:
///
/// ```ignore
/// component! {
///     /// Random flips.
///     #[kind(Transform)]
///     #[names("monai.transforms.RandFlipd")]
///     pub struct RandFlipd {
///         /// the columns this transform applies to
///         pub keys: Keys,
///         /// probability of applying the transform
///         pub prob: f64 = 0.1,
///     }
///     ignored {
///         /// (MONAI) lazy resampling
///         lazy: bool = false => "transforms run eagerly",
///     }
///     unsupported {
///         /// (MONAI) not supported
///         some_option: Option<Raw> = None,
///     }
/// }
/// ```
///
/// A field without `= default` is required; `#[yaml = "T_max"]` names the YAML key when it is
/// not the field's name. `ignored` parameters are accepted and have no effect here (the reason
/// is a note when one is set); `unsupported` ones are cyto_dl options cytodl lacks (an error
/// when set to anything but null, false or empty). Neither is a field: generated code never
/// carries them.
#[macro_export]
macro_rules! component {
    (
        $(#[doc = $doc:literal])*
        #[kind($kind:ident)]
        #[names($($name:literal),+ $(,)?)]
        pub struct $Name:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $(#[yaml = $yaml:literal])?
                pub $field:ident : $fty:ty $(= $default:expr)?
            ),* $(,)?
        }
        $(ignored {
            $(
                $(#[doc = $idoc:literal])*
                $iname:ident : $ity:ty = $idefault:expr => $why:literal
            ),* $(,)?
        })?
        $(unsupported {
            $(
                $(#[doc = $udoc:literal])*
                $uname:ident : $uty:ty = $udefault:expr
            ),* $(,)?
        })?
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $Name {
            $( $(#[doc = $fdoc])* pub $field: $fty, )*
        }

        impl $crate::Component for $Name {
            const SPEC: $crate::ComponentSpec = $crate::ComponentSpec {
                native: stringify!($Name),
                kind: $crate::Kind::$kind,
                names: &[$($name),+],
                params: &[
                    $(
                        $crate::ParamSpec {
                            name: $crate::__yaml_name!($field $(, $yaml)?),
                            ty: <$fty as $crate::Field>::TY,
                            default: $crate::__default_text!($fty $(, $default)?),
                            nullable: <$fty as $crate::Field>::NULLABLE,
                            doc: concat!($($fdoc),*),
                            effect: $crate::Effect::Used,
                        },
                    )*
                    $($(
                        $crate::ParamSpec {
                            name: stringify!($iname),
                            ty: <$ity as $crate::Field>::TY,
                            default: $crate::__default_text!($ity, $idefault),
                            nullable: <$ity as $crate::Field>::NULLABLE,
                            doc: concat!($($idoc),*),
                            effect: $crate::Effect::Ignored($why),
                        },
                    )*)?
                    $($(
                        $crate::ParamSpec {
                            name: stringify!($uname),
                            ty: <$uty as $crate::Field>::TY,
                            default: $crate::__default_text!($uty, $udefault),
                            nullable: <$uty as $crate::Field>::NULLABLE,
                            doc: concat!($($udoc),*),
                            effect: $crate::Effect::Unsupported,
                        },
                    )*)?
                ],
                doc: concat!($($doc),*),
            };

            #[allow(unused_variables)]
            fn from_args(args: &$crate::Args) -> ::core::result::Result<Self, $crate::FieldErrors> {
                #[allow(unused_mut)]
                let mut errors = $crate::FieldErrors::default();
                $(
                    let $field = args.take::<$fty>($crate::__yaml_name!($field $(, $yaml)?), $crate::__default_value!($fty $(, $default)?), &mut errors);
                )*
                match ($($field,)*) {
                    ($(Some($field),)*) => Ok($Name { $($field,)* }),
                    #[allow(unreachable_patterns)]
                    _ => Err(errors),
                }
            }

            fn to_args(&self) -> $crate::indexmap::IndexMap<String, $crate::Lit> {
                #[allow(unused_mut)]
                let mut m = $crate::indexmap::IndexMap::new();
                $( m.insert($crate::__yaml_name!($field $(, $yaml)?).to_string(), $crate::Field::to_lit(&self.$field)); )*
                m
            }

            #[cfg(feature = "codegen")]
            #[allow(unused_variables)]
            fn literal(&self, cx: &dyn $crate::field::Context) -> $crate::proc_macro2::TokenStream {
                $crate::component::struct_literal(stringify!($Name), vec![$( (stringify!($field), $crate::Field::literal(&self.$field, cx)) ),*])
            }
        }

        impl $crate::Field for $Name {
            const TY: $crate::Ty = $crate::Ty::Target($crate::Kind::$kind);
            fn from_lit(lit: &$crate::Lit) -> ::core::result::Result<Self, String> {
                $crate::component::component_from_lit(lit)
            }
            fn to_lit(&self) -> $crate::Lit {
                $crate::component::component_lit(self)
            }
            #[cfg(feature = "codegen")]
            fn literal(&self, cx: &dyn $crate::field::Context) -> $crate::proc_macro2::TokenStream {
                <Self as $crate::Component>::literal(self, cx)
            }
        }
    };
}

/// Declares the components of one kind as one exhaustive enum: choosing a component is a
/// `match`, and a component added to the kind is a compile error wherever it is not handled.
#[macro_export]
macro_rules! kind {
    (
        $(#[doc = $doc:literal])*
        pub enum $Name:ident : $kind:ident { $($Variant:ident),+ $(,)? }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $Name {
            $( $Variant($Variant), )+
        }

        impl $Name {
            pub const KIND: $crate::Kind = $crate::Kind::$kind;

            /// Every member's spec, in declaration order.
            pub const SPECS: &'static [&'static $crate::ComponentSpec] = &[$( &<$Variant as $crate::Component>::SPEC ),+];

            /// The member answering to `target` (a `_target_` name or the native name), built
            /// from `args`; `None` when no member answers.
            pub fn from_args(target: &str, args: &$crate::Args) -> Option<::core::result::Result<Self, $crate::FieldErrors>> {
                $(
                    if <$Variant as $crate::Component>::SPEC.answers(target) {
                        return Some(<$Variant as $crate::Component>::from_args(args).map($Name::$Variant));
                    }
                )+
                None
            }

            /// The spec of the member this value is.
            pub fn spec(&self) -> &'static $crate::ComponentSpec {
                match self {
                    $( $Name::$Variant(_) => &<$Variant as $crate::Component>::SPEC, )+
                }
            }
        }

        $(
            impl From<$Variant> for $Name {
                fn from(v: $Variant) -> Self {
                    $Name::$Variant(v)
                }
            }
        )+

        impl $crate::Field for $Name {
            const TY: $crate::Ty = $crate::Ty::Target($crate::Kind::$kind);
            fn from_lit(lit: &$crate::Lit) -> ::core::result::Result<Self, String> {
                let Some(map) = lit.as_map() else { return Err(format!("must be {}", <Self as $crate::Field>::TY.describe())) };
                let target = map.get("_target_").and_then($crate::Lit::as_str).unwrap_or_default();
                match Self::from_args(target, &$crate::Args::of_map(map)) {
                    Some(r) => r.map_err(|e| e.to_string()),
                    None => Err(format!("`{target}` is not {}", $crate::Kind::$kind.with_article())),
                }
            }
            fn to_lit(&self) -> $crate::Lit {
                match self {
                    $( $Name::$Variant(v) => $crate::component::component_lit(v), )+
                }
            }
            #[cfg(feature = "codegen")]
            fn literal(&self, cx: &dyn $crate::field::Context) -> $crate::proc_macro2::TokenStream {
                let (variant, inner) = match self {
                    $( $Name::$Variant(v) => (stringify!($Variant), <$Variant as $crate::Component>::literal(v, cx)), )+
                };
                let name = $crate::proc_macro2::Ident::new(stringify!($Name), $crate::proc_macro2::Span::call_site());
                let variant = $crate::proc_macro2::Ident::new(variant, $crate::proc_macro2::Span::call_site());
                $crate::quote::quote!(#name::#variant(#inner))
            }
        }
    };
}

/// Declares a string option (`reduction: mean`), each variant with its spellings (the first is
/// the canonical one).
#[macro_export]
macro_rules! choice {
    (
        $(#[doc = $doc:literal])*
        pub enum $Name:ident {
            $( $(#[doc = $vdoc:literal])* $Variant:ident = $first:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $Name {
            $( $(#[doc = $vdoc])* $Variant, )+
        }

        impl $Name {
            /// Every accepted spelling.
            pub const NAMES: &'static [&'static str] = &[$( $first $(, $alias)* ),+];

            /// The canonical spelling.
            pub fn name(self) -> &'static str {
                match self {
                    $( $Name::$Variant => $first, )+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $first $(| $alias)* => Some($Name::$Variant), )+
                    _ => None,
                }
            }
        }

        impl $crate::field::Element for $Name {
            const LIST_TY: $crate::Ty = $crate::Ty::Strs;
        }

        impl $crate::Field for $Name {
            const TY: $crate::Ty = $crate::Ty::Enum(Self::NAMES);
            fn from_lit(lit: &$crate::Lit) -> ::core::result::Result<Self, String> {
                lit.as_str().and_then(Self::parse).ok_or_else(|| format!("must be {}, found {}", <Self as $crate::Field>::TY.describe(), lit.to_yaml()))
            }
            fn to_lit(&self) -> $crate::Lit {
                $crate::Lit::Str(self.name().to_string())
            }
            #[cfg(feature = "codegen")]
            fn literal(&self, _: &dyn $crate::field::Context) -> $crate::proc_macro2::TokenStream {
                let variant = match self {
                    $( $Name::$Variant => stringify!($Variant), )+
                };
                let name = $crate::proc_macro2::Ident::new(stringify!($Name), $crate::proc_macro2::Span::call_site());
                let variant = $crate::proc_macro2::Ident::new(variant, $crate::proc_macro2::Span::call_site());
                $crate::quote::quote!(#name::#variant)
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __yaml_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $yaml:literal) => {
        $yaml
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __default_text {
    ($fty:ty) => {
        None
    };
    ($fty:ty, $default:expr) => {
        Some(|| {
            $crate::field::default_text::<$fty>(&{
                let v: $fty = $default;
                v
            })
        })
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __default_value {
    ($fty:ty) => {
        None
    };
    ($fty:ty, $default:expr) => {
        Some(|| -> $fty { $default })
    };
}
