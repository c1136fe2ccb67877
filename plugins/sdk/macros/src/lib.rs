//! The `#[object]` attribute of `periscope-plugin-sdk`; use it through the SDK
//! (`periscope_plugin_sdk::object`), which documents it.
//!
//! On a struct with named fields it
//!
//! - derives `Default` and serde's `Deserialize` (unless the struct already derives
//!   them) with `#[serde(default)]`, so an absent field is its default;
//! - adds `deserialize_with = "periscope_plugin_sdk::nullable"` to every field that has
//!   no `deserialize_with`/`with` of its own, so a `null` field is its default too (the
//!   apiserver writes `null` for many empty fields, and the spec treats it as absence);
//! - implements `periscope_plugin_sdk::Object`, whose `FIELDS` are the keys the struct
//!   reads, after serde's `rename`, `rename_all` and `alias`. A `#[serde(flatten)]`
//!   field reads every key, so `FIELDS` is then empty (the host keeps everything).
//!
//! What it is not: a serde replacement. Every other serde attribute works as usual.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::{Attribute, Data, DeriveInput, Fields, Meta, Token, parse_macro_input};

/// Makes every field of a raw-object struct default when absent or `null`, and
/// records the keys it reads. See the SDK's documentation of `object`.
#[proc_macro_attribute]
pub fn object(args: TokenStream, input: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return syn::Error::new(Span::call_site(), "#[object] takes no arguments")
            .to_compile_error()
            .into();
    }
    let input = parse_macro_input!(input as DeriveInput);
    match expand(input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(mut input: DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &mut input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[object] goes on a struct with named fields (the fields of a raw object this plugin reads)",
        ));
    };
    let Fields::Named(fields) = &mut data.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[object] needs named fields: each one is a key of the raw object",
        ));
    };
    let container = SerdeAttrs::of(&input.attrs)?;
    let mut keys: Vec<String> = Vec::new();
    let mut reads_everything = false;
    for field in &mut fields.named {
        let attrs = SerdeAttrs::of(&field.attrs)?;
        if attrs.flatten {
            reads_everything = true;
        }
        if attrs.skip {
            continue;
        }
        if !attrs.custom_deserializer && !attrs.flatten {
            field
                .attrs
                .push(syn::parse_quote!(#[serde(deserialize_with = "::periscope_plugin_sdk::nullable")]));
        }
        let ident = field.ident.as_ref().map(ToString::to_string).unwrap_or_default();
        let ident = ident.strip_prefix("r#").unwrap_or(&ident).to_string();
        let name = match (&attrs.rename, &container.rename_all) {
            (Some(name), _) => name.clone(),
            (None, Some(rule)) => apply_rule(rule, &ident).map_err(|m| syn::Error::new(Span::call_site(), m))?,
            (None, None) => ident,
        };
        keys.push(name);
        keys.extend(attrs.aliases);
    }
    if reads_everything {
        keys.clear();
    }
    let mut seen = Vec::new();
    keys.retain(|k| {
        !seen.contains(k) && {
            seen.push(k.clone());
            true
        }
    });

    let (has_default, has_deserialize) = derives(&input.attrs)?;
    let mut prefix: Vec<Attribute> = Vec::new();
    if !has_default {
        prefix.push(syn::parse_quote!(#[derive(::core::default::Default)]));
    }
    if !has_deserialize {
        prefix.push(syn::parse_quote!(#[derive(::periscope_plugin_sdk::__private::serde::Deserialize)]));
        prefix.push(syn::parse_quote!(#[serde(crate = "::periscope_plugin_sdk::__private::serde")]));
    }
    prefix.push(syn::parse_quote!(#[serde(default)]));
    // Derives go first: serde's helper attributes must come after the derive that
    // introduces them.
    prefix.append(&mut input.attrs);
    input.attrs = prefix;

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #input
        impl #impl_generics ::periscope_plugin_sdk::Object for #ident #ty_generics #where_clause {
            const FIELDS: &'static [&'static str] = &[#(#keys),*];
        }
    })
}

/// The serde attributes `#[object]` cares about.
#[derive(Default)]
struct SerdeAttrs {
    rename: Option<String>,
    rename_all: Option<String>,
    aliases: Vec<String>,
    flatten: bool,
    skip: bool,
    custom_deserializer: bool,
}

impl SerdeAttrs {
    fn of(attrs: &[Attribute]) -> syn::Result<SerdeAttrs> {
        let mut found = SerdeAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let Meta::List(list) = &attr.meta else { continue };
            let items = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
            for item in items {
                let path = item.path();
                let name = path.get_ident().map(ToString::to_string).unwrap_or_default();
                match (name.as_str(), &item) {
                    ("rename", Meta::NameValue(nv)) => found.rename = Some(string(&nv.value)?),
                    ("rename", Meta::List(list)) => {
                        // rename(deserialize = "…"): only the deserialize side matters.
                        let inner = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
                        for meta in inner {
                            if let Meta::NameValue(nv) = meta
                                && nv.path.is_ident("deserialize")
                            {
                                found.rename = Some(string(&nv.value)?);
                            }
                        }
                    }
                    ("rename_all", Meta::NameValue(nv)) => found.rename_all = Some(string(&nv.value)?),
                    ("alias", Meta::NameValue(nv)) => found.aliases.push(string(&nv.value)?),
                    ("flatten", _) => found.flatten = true,
                    ("skip" | "skip_deserializing", _) => found.skip = true,
                    ("deserialize_with" | "with", _) => found.custom_deserializer = true,
                    _ => {}
                }
            }
        }
        Ok(found)
    }
}

fn string(expr: &syn::Expr) -> syn::Result<String> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s), ..
        }) => Ok(s.value()),
        other => Err(syn::Error::new_spanned(other, "expected a string literal")),
    }
}

/// Whether the struct already derives `Default` and `Deserialize`.
fn derives(attrs: &[Attribute]) -> syn::Result<(bool, bool)> {
    let mut default = false;
    let mut deserialize = false;
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        attr.parse_nested_meta(|meta| {
            match meta.path.segments.last().map(|s| s.ident.to_string()).as_deref() {
                Some("Default") => default = true,
                Some("Deserialize") => deserialize = true,
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok((default, deserialize))
}

/// serde's `rename_all` rules, applied to a snake_case field name.
fn apply_rule(rule: &str, field: &str) -> Result<String, String> {
    let words = field.split('_').filter(|w| !w.is_empty());
    let capitalized = |w: &str| {
        let mut chars = w.chars();
        chars
            .next()
            .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    };
    Ok(match rule {
        "lowercase" => field.to_ascii_lowercase(),
        "UPPERCASE" => field.to_ascii_uppercase(),
        "snake_case" => field.to_string(),
        "SCREAMING_SNAKE_CASE" => field.to_ascii_uppercase(),
        "kebab-case" => field.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => field.replace('_', "-").to_ascii_uppercase(),
        "PascalCase" => words.map(capitalized).collect(),
        "camelCase" => {
            let pascal: String = words.map(capitalized).collect();
            let mut chars = pascal.chars();
            chars
                .next()
                .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
                .unwrap_or_default()
        }
        other => return Err(format!("#[object] does not know the rename_all rule {other:?}")),
    })
}
