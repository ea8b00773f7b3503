/// The console's pages as Mustache templates (swift-mustache). Every visible word is a catalogue key
/// (`{{t.section.key}}`) or data; `{{x}}` escapes HTML. The templates are compiled into the binary, so the
/// gate box serves them without a resource folder; the stylesheet and the one script are served the same way.
enum ConsoleTemplates {
    static let all: [String: String] = [
        "layout": layout, "login": login, "today": today, "today-classes": todayClasses, "class": classPage,
        "student": student, "roster": roster, "exports": exports, "audit": audit, "users": users, "message": message,
        "review": review,
    ]

    static let layout = """
        <!DOCTYPE html>
        <html lang="{{lang}}">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · {{t.app.title}}</title>
        <link rel="stylesheet" href="/static/console.css">
        {{#live}}<script src="/static/console.js" defer></script>{{/live}}
        </head>
        <body>
        <header>
        <a class="brand" href="/">{{t.app.title}}</a>
        {{#user}}
        <nav>
        <a href="/">{{t.nav.today}}</a>
        {{#canImport}}<a href="/roster">{{t.nav.roster}}</a>{{/canImport}}
        <a href="/review">{{t.nav.review}}{{#reviewCount}} ({{reviewCount}}){{/reviewCount}}</a>
        <a href="/exports">{{t.nav.exports}}</a>
        {{#canAudit}}<a href="/audit">{{t.nav.audit}}</a>{{/canAudit}}
        {{#canUsers}}<a href="/users">{{t.nav.users}}</a>{{/canUsers}}
        <a href="/language?to={{otherLang}}">{{t.nav.language}}</a>
        <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">{{t.nav.signout}} ({{name}})</button></form>
        </nav>
        {{/user}}
        </header>
        <main>
        {{{body}}}
        </main>
        </body>
        </html>
        """

    static let login = """
        <h1>{{t.login.title}}</h1>
        {{#problem}}<p class="problem" role="alert">{{problem}}</p>{{/problem}}
        <form method="post" action="/login" class="stack">
        <input type="hidden" name="csrf" value="{{loginToken}}">
        <label for="name">{{t.login.name}}</label>
        <input id="name" name="name" autocomplete="username" required autofocus>
        <label for="password">{{t.login.password}}</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required>
        <button type="submit">{{t.login.submit}}</button>
        </form>
        """

    static let today = """
        <h1>{{heading}}</h1>
        {{^schoolDay}}<p class="note">{{t.today.notSchoolDay}}</p>{{/schoolDay}}
        <p class="note">{{t.today.live}}</p>
        <div id="today-classes" data-live="/today/events" data-fragment="/today/fragment">
        {{> today-classes}}
        </div>
        <h2>{{t.gate.title}}</h2>
        {{#gate}}
        <table>
        <thead><tr><th scope="col">{{t.gate.camera}}</th><th scope="col">{{t.col.state}}</th><th scope="col">{{t.gate.lastFrame}}</th></tr></thead>
        <tbody>
        {{#cameras}}<tr><td>{{id}}</td><td>{{state}}</td><td>{{lastFrame}}</td></tr>{{/cameras}}
        </tbody>
        </table>
        <p>{{t.gate.outbox}}: <strong>{{outbox}}</strong>. {{t.gate.clock}}: <strong>{{clock}}</strong>.</p>
        {{/gate}}
        {{^gate}}<p>{{t.gate.none}} {{t.gate.outbox}}: <strong>{{outbox}}</strong>.</p>{{/gate}}
        """

    static let todayClasses = """
        <table class="counts">
        <thead><tr><th scope="col">{{t.col.class}}</th><th scope="col">{{t.col.students}}</th><th scope="col">{{t.col.present}}</th><th scope="col">{{t.col.late}}</th><th scope="col">{{t.col.absent}}</th><th scope="col">{{t.col.excused}}</th></tr></thead>
        <tbody>
        {{#classes}}<tr><td><a href="/classes/{{href}}">{{code}}</a></td><td>{{students}}</td><td>{{present}}</td><td>{{late}}</td><td>{{absent}}</td><td>{{excused}}</td></tr>{{/classes}}
        </tbody>
        </table>
        <p>{{t.today.unknown}}: <strong id="unknown-count">{{unknown}}</strong></p>
        {{#classes}}
        <h2>{{t.col.class}} {{code}}</h2>
        <table class="list">
        <thead><tr><th scope="col">{{t.col.name}}</th><th scope="col">{{t.col.status}}</th><th scope="col">{{t.col.firstSeen}}</th></tr></thead>
        <tbody>
        {{#rows}}<tr class="status-{{statusKey}}"><td><a href="/students/{{href}}">{{name}}</a></td><td>{{status}}</td><td>{{firstSeen}}</td></tr>{{/rows}}
        </tbody>
        </table>
        {{/classes}}
        """

    static let classPage = """
        <h1>{{heading}}</h1>
        <table class="list">
        <thead><tr><th scope="col">{{t.col.code}}</th><th scope="col">{{t.col.name}}</th><th scope="col">{{t.col.status}}</th><th scope="col">{{t.col.consent}}</th><th scope="col">{{t.col.faces}}</th></tr></thead>
        <tbody>
        {{#rows}}<tr><td>{{code}}</td><td><a href="/students/{{href}}">{{name}}</a></td><td>{{status}}</td><td>{{consent}}</td><td>{{faces}}</td></tr>{{/rows}}
        </tbody>
        </table>
        """

    static let student = """
        <h1>{{heading}}</h1>
        <p>{{t.col.code}}: {{code}} · {{t.col.class}}: <a href="/classes/{{classHref}}">{{classCode}}</a></p>
        {{#flash}}<div class="flash" role="status"><p>{{title}}</p><ul>{{#lines}}<li>{{.}}</li>{{/lines}}</ul></div>{{/flash}}
        <section>
        <h2>{{t.student.attendance}}</h2>
        <form method="get" action="/students/{{href}}" class="row">
        <label for="from">{{t.student.from}}</label><input id="from" name="from" type="date" value="{{from}}">
        <label for="to">{{t.student.to}}</label><input id="to" name="to" type="date" value="{{to}}">
        <button type="submit">{{t.student.show}}</button>
        </form>
        <table class="list">
        <thead><tr><th scope="col">{{t.col.date}}</th><th scope="col">{{t.col.status}}</th><th scope="col">{{t.col.firstSeen}}</th></tr></thead>
        <tbody>{{#days}}<tr class="status-{{statusKey}}"><td>{{date}}</td><td>{{status}}</td><td>{{firstSeen}}</td></tr>{{/days}}</tbody>
        </table>
        </section>
        <section>
        <h2>{{t.consent.title}}</h2>
        {{#consent}}<p>{{consent}}</p>{{/consent}}{{^consent}}<p>{{t.consent.none}}</p>{{/consent}}
        {{#canBiometrics}}
        <form method="post" action="/students/{{href}}/consent" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="guardian">{{t.consent.guardian}}</label><input id="guardian" name="guardian" required>
        <label for="relation">{{t.consent.relation}}</label><input id="relation" name="relation" required>
        <label for="consent-date">{{t.consent.date}}</label><input id="consent-date" name="date" required placeholder="01/09/2026">
        <label class="check" for="child">{{t.consent.childAgrees}}</label><input id="child" name="child" type="checkbox" value="1">
        <button type="submit">{{t.consent.record}}</button>
        </form>
        {{#consent}}
        <form method="post" action="/students/{{href}}/consent/revoke" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="revoke-reason">{{t.consent.reason}}</label><input id="revoke-reason" name="reason">
        <button type="submit" class="danger">{{t.consent.revoke}}</button>
        </form>
        {{/consent}}
        {{/canBiometrics}}
        </section>
        <section>
        <h2>{{t.enrol.title}}</h2>
        <p>{{enrolCount}}</p>
        {{#canBiometrics}}
        <form method="post" action="/students/{{href}}/enrol" enctype="multipart/form-data" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="photos">{{photosLabel}}</label><input id="photos" name="photos" type="file" accept="image/jpeg,image/png" multiple required>
        <label class="check" for="force">{{t.enrol.force}}</label><input id="force" name="force" type="checkbox" value="1">
        <button type="submit">{{t.enrol.submit}}</button>
        </form>
        <form method="post" action="/students/{{href}}/unenrol" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit" class="danger">{{t.enrol.remove}}</button>
        </form>
        {{/canBiometrics}}
        </section>
        {{#canAttendance}}
        <section>
        <h2>{{t.excuse.title}}</h2>
        <form method="post" action="/students/{{href}}/excuse" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="excuse-date">{{t.excuse.date}}</label><input id="excuse-date" name="date" type="date" value="{{today}}" required>
        <label for="excuse-reason">{{t.excuse.reason}}</label><input id="excuse-reason" name="reason" required>
        <button type="submit">{{t.excuse.submit}}</button>
        </form>
        <h2>{{t.correct.title}}</h2>
        <form method="post" action="/students/{{href}}/correct" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="correct-date">{{t.excuse.date}}</label><input id="correct-date" name="date" type="date" value="{{today}}" required>
        <label for="correct-status">{{t.correct.status}}</label>
        <select id="correct-status" name="status">{{#statuses}}<option value="{{value}}">{{label}}</option>{{/statuses}}<option value="cancel">{{t.correct.cancel}}</option></select>
        <label for="correct-reason">{{t.excuse.reason}}</label><input id="correct-reason" name="reason" required>
        <button type="submit">{{t.correct.submit}}</button>
        </form>
        </section>
        {{/canAttendance}}
        {{#canErase}}
        <section>
        <h2>{{t.erase.title}}</h2>
        <form method="post" action="/students/{{href}}/erase" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="erase-reason">{{t.consent.reason}}</label><input id="erase-reason" name="reason" required>
        <button type="submit" class="danger">{{t.erase.submit}}</button>
        </form>
        </section>
        {{/canErase}}
        """

    static let roster = """
        <h1>{{t.roster.title}}</h1>
        {{#flash}}<div class="flash" role="status"><p>{{title}}</p><ul>{{#lines}}<li>{{.}}</li>{{/lines}}</ul></div>{{/flash}}
        {{#pending}}
        <form method="post" action="/roster/confirm" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="whole" value="{{whole}}">
        <input type="hidden" name="file" value="{{pendingFile}}">
        <input type="hidden" name="pending" value="{{pending}}">
        <button type="submit">{{t.roster.confirm}}</button>
        </form>
        {{/pending}}
        <form method="post" action="/roster" enctype="multipart/form-data" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="roster-file">{{fileLabel}}</label><input id="roster-file" name="file" type="file" accept=".csv,text/csv" required>
        <label class="check" for="whole">{{t.roster.wholeSchool}}</label><input id="whole" name="whole" type="checkbox" value="1">
        <button type="submit">{{t.roster.check}}</button>
        </form>
        """

    static let exports = """
        <h1>{{t.exports.title}}</h1>
        <section>
        <h2>{{t.exports.daily}}</h2>
        <form method="get" action="/exports/daily" class="stack">
        <label for="daily-date">{{t.col.date}}</label><input id="daily-date" name="date" type="date" value="{{today}}" required>
        <label for="daily-class">{{t.col.class}}</label>
        <select id="daily-class" name="class">{{#schoolOption}}<option value="">{{t.exports.allClasses}}</option>{{/schoolOption}}{{#classes}}<option value="{{.}}">{{.}}</option>{{/classes}}</select>
        <label for="daily-format">{{t.exports.format}}</label>
        <select id="daily-format" name="format"><option value="xlsx">XLSX</option><option value="csv">CSV</option></select>
        <button type="submit">{{t.exports.download}}</button>
        </form>
        </section>
        <section>
        <h2>{{t.exports.absences}}</h2>
        <form method="get" action="/exports/absences" class="stack">
        <label for="abs-from">{{t.student.from}}</label><input id="abs-from" name="from" type="date" value="{{semesterStart}}" required>
        <label for="abs-to">{{t.student.to}}</label><input id="abs-to" name="to" type="date" value="{{today}}" required>
        <label for="abs-class">{{t.col.class}}</label>
        <select id="abs-class" name="class">{{#schoolOption}}<option value="">{{t.exports.allClasses}}</option>{{/schoolOption}}{{#classes}}<option value="{{.}}">{{.}}</option>{{/classes}}</select>
        <label for="abs-format">{{t.exports.format}}</label>
        <select id="abs-format" name="format"><option value="xlsx">XLSX</option><option value="csv">CSV</option></select>
        <button type="submit">{{t.exports.download}}</button>
        </form>
        </section>
        """

    static let audit = """
        <h1>{{t.audit.title}}</h1>
        <form method="get" action="/audit" class="row">
        <label for="audit-date">{{t.col.date}}</label><input id="audit-date" name="date" type="date" value="{{date}}">
        <label for="audit-user">{{t.col.user}}</label><input id="audit-user" name="user" value="{{user}}">
        <label for="audit-action">{{t.col.action}}</label><input id="audit-action" name="action" value="{{action}}">
        <button type="submit">{{t.audit.filter}}</button>
        </form>
        <table class="list">
        <thead><tr><th scope="col">{{t.col.time}}</th><th scope="col">{{t.col.user}}</th><th scope="col">{{t.col.action}}</th><th scope="col">{{t.col.subject}}</th><th scope="col">{{t.col.detail}}</th></tr></thead>
        <tbody>{{#entries}}<tr><td>{{at}}</td><td>{{who}}</td><td>{{action}}</td><td>{{subject}}</td><td>{{detail}}</td></tr>{{/entries}}</tbody>
        </table>
        """

    static let review = """
        <h1>{{t.review.title}}</h1>
        {{#flash}}<div class="flash" role="status"><p>{{title}}</p></div>{{/flash}}
        <p>{{t.review.intro}}</p>
        {{^rows}}<p>{{t.review.none}}</p>{{/rows}}
        {{#any}}
        <table class="list">
        <thead><tr><th scope="col">{{t.col.time}}</th><th scope="col">{{t.col.class}}</th><th scope="col">{{t.col.name}}</th><th scope="col">{{t.col.session}}</th><th scope="col">{{t.col.status}}</th><th scope="col">{{t.col.camera}}</th><th scope="col">{{t.col.real}}</th><th scope="col">{{t.col.reason}}</th><th scope="col"></th></tr></thead>
        <tbody>
        {{#rows}}<tr><td>{{date}} {{time}}</td><td>{{classCode}}</td><td><a href="/students/{{href}}">{{name}}</a></td><td>{{session}}</td><td>{{status}}</td><td>{{camera}}</td><td>{{real}}</td><td>{{reason}}</td><td>
        {{#canDecide}}<form method="post" action="/review/{{id}}/accept" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">{{t.review.accept}}</button></form>
        <details><summary>{{t.review.reject}}</summary><form method="post" action="/review/{{id}}/reject" class="stack"><input type="hidden" name="csrf" value="{{csrf}}"><label for="why-{{id}}">{{t.review.reason}}</label><input id="why-{{id}}" name="reason"><button type="submit">{{t.review.reject}}</button></form></details>{{/canDecide}}
        </td></tr>{{/rows}}
        </tbody>
        </table>
        {{/any}}
        """

    static let users = """
        <h1>{{t.users.title}}</h1>
        {{#flash}}<div class="flash" role="status"><p>{{title}}</p></div>{{/flash}}
        <table class="list">
        <thead><tr><th scope="col">{{t.login.name}}</th><th scope="col">{{t.col.role}}</th><th scope="col">{{t.col.classes}}</th><th scope="col">{{t.col.state}}</th><th scope="col"></th></tr></thead>
        <tbody>
        {{#accounts}}<tr><td>{{name}}</td><td>{{role}}</td><td>{{classes}}</td><td>{{state}}</td><td>
        <form method="post" action="/users/{{href}}/{{toggle}}" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">{{toggleLabel}}</button></form>
        <form method="post" action="/users/{{href}}/password" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><label for="pw-{{href}}">{{t.users.newPassword}}</label> <input id="pw-{{href}}" name="password" type="password" autocomplete="new-password" required minlength="10"> <button type="submit">{{t.users.setPassword}}</button></form>
        </td></tr>{{/accounts}}
        </tbody>
        </table>
        <h2>{{t.users.add}}</h2>
        <form method="post" action="/users" class="stack">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="new-name">{{t.login.name}}</label><input id="new-name" name="name" required>
        <label for="new-role">{{t.col.role}}</label>
        <select id="new-role" name="role">{{#roles}}<option value="{{value}}">{{label}}</option>{{/roles}}</select>
        <label for="new-classes">{{t.users.classesHint}}</label><input id="new-classes" name="classes">
        <label for="new-password">{{t.login.password}}</label><input id="new-password" name="password" type="password" autocomplete="new-password" required minlength="10">
        <button type="submit">{{t.users.add}}</button>
        </form>
        """

    static let message = """
        <h1>{{heading}}</h1>
        <p class="{{kind}}" role="alert">{{text}}</p>
        <p><a href="{{back}}">{{t.error.back}}</a></p>
        """

    static let css = """
        :root { color-scheme: light; }
        * { box-sizing: border-box; }
        body { margin: 0; font-family: system-ui, "Segoe UI", Roboto, "Noto Sans", sans-serif; font-size: 16px;
          line-height: 1.45; color: #1a1a1a; background: #ffffff; }
        header { background: #0b3d6b; color: #ffffff; padding: 0.5rem 1rem; display: flex; flex-wrap: wrap;
          gap: 0.5rem 1rem; align-items: center; }
        header a, header button { color: #ffffff; }
        header .brand { font-weight: bold; text-decoration: none; margin-right: auto; }
        nav { display: flex; flex-wrap: wrap; gap: 0.25rem 0.9rem; align-items: center; }
        nav button { background: none; border: 1px solid #ffffff; border-radius: 4px; padding: 0.2rem 0.5rem;
          font: inherit; cursor: pointer; }
        main { padding: 0.75rem 1rem 2rem; max-width: 72rem; margin: 0 auto; }
        h1 { font-size: 1.5rem; margin: 0.5rem 0 1rem; }
        h2 { font-size: 1.2rem; margin: 1.5rem 0 0.5rem; }
        table { border-collapse: collapse; width: 100%; margin: 0.5rem 0; display: block; overflow-x: auto; }
        th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #c8c8c8; white-space: nowrap; }
        th { background: #eef2f6; color: #1a1a1a; }
        a { color: #0a4f8f; }
        .stack { display: grid; gap: 0.35rem; max-width: 28rem; margin: 0.5rem 0 1rem; }
        .row { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; margin: 0.5rem 0; }
        .inline { display: inline; }
        input, select, textarea, button { font: inherit; color: #1a1a1a; }
        input, select, textarea { padding: 0.35rem; border: 1px solid #6b6b6b; border-radius: 4px; background: #ffffff; }
        button { padding: 0.4rem 0.8rem; border: 1px solid #0b3d6b; border-radius: 4px; background: #0b3d6b;
          color: #ffffff; cursor: pointer; }
        button.danger { background: #8f1d1d; border-color: #8f1d1d; }
        .problem, .error { color: #8f1d1d; font-weight: bold; }
        .flash { border-left: 4px solid #0b3d6b; background: #eef2f6; padding: 0.25rem 0.75rem; margin: 0.5rem 0; }
        .note { color: #3d3d3d; }
        tr.status-absent td { color: #8f1d1d; }
        tr.status-late td { color: #7a4500; }
        @media (max-width: 480px) { main { padding: 0.5rem; } h1 { font-size: 1.25rem; } }
        """

    /// The one script: the Today page listens to the server's events and reloads its table fragment.
    static let js = """
        (function () {
          var box = document.getElementById("today-classes");
          if (!box || !window.EventSource) { return; }
          var source = new EventSource(box.getAttribute("data-live"));
          source.addEventListener("update", function () {
            fetch(box.getAttribute("data-fragment"), { credentials: "same-origin" })
              .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
              .then(function (html) { if (html !== null) { box.innerHTML = html; } });
          });
        })();
        """
}
