//! The login form: a token pasted once, kept by the browser in a cookie that only reads.

use crate::pages::layout::{self, escape};

const STYLE: &str = "
form.login { display: grid; gap: .6rem; max-width: 24rem; margin: 3rem auto; }
form.login input { font: inherit; padding: .4rem; }
form.login button { font: inherit; padding: .4rem; }
.problem { color: var(--bad); }
";

/// The login form, coming back to `next` once logged in, with `problem` from the last try.
pub fn render(next: &str, problem: Option<&str>) -> String {
    let mut out = String::with_capacity(2048);
    layout::start(&mut out, "Log in", None, true, STYLE, None);
    out.push_str("<form class=\"login\" method=\"post\" action=\"/login\"><h1>Log in</h1>");
    if let Some(problem) = problem {
        out.push_str("<p class=\"problem\" role=\"alert\">");
        out.push_str(&escape(problem));
        out.push_str("</p>");
    }
    out.push_str(
        "<label for=\"token\">Token of your project (read or deploy)</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" \
         required autofocus>",
    );
    out.push_str("<input type=\"hidden\" name=\"next\" value=\"");
    out.push_str(&escape(next));
    out.push_str(
        "\"><button type=\"submit\">Log in</button>\
         <small>A read token is enough: <code>control-plane token create --project P \
         --role read</code>. The browser keeps it in a cookie that only reads.</small></form>",
    );
    layout::end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_escapes_what_it_echoes() {
        let page = render("/\"><script>x</script>", Some("<b>unknown</b> token"));
        assert!(!page.contains("<script>x"), "{page}");
        assert!(!page.contains("<b>unknown"), "{page}");
        assert!(page.contains("&lt;b&gt;unknown&lt;/b&gt; token"), "{page}");
        assert!(page.contains("name=\"token\" type=\"password\""), "{page}");
        assert!(!page.contains("<script"), "no script at all: {page}");
    }
}
