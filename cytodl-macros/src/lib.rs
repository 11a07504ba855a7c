use proc_macro::TokenStream;
#[proc_macro]
pub fn cytodl_experiment(_input: TokenStream) -> TokenStream { TokenStream::new() }
