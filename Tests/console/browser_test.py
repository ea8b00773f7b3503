"""The school console in a real browser (headless Chromium driven by selenium), run by ConsoleBrowserEndToEndTests.

A homeroom teacher signs in, watches her class's Today page while a replay of the gate video runs in another
process (the arrivals must appear without a reload), records a guardian's consent, uploads photos to enrol a
student and reads the per-photo feedback, downloads the day's XLSX and reads it back; the other class's
teacher is refused her class. Every page visited is checked for the accessibility basics (one h1, a label for
every field, body text contrast >= 4.5:1) and screenshotted at 360 and 1366 px wide into the output folder.

Arguments: a JSON file with base, serve (the replay's command line), out, downloads, photos, teacher,
other_teacher, password, student_enrolled (in the teacher's class), student_new (in her class, no consent).
Prints one line per check; exits non-zero on the first failure.
"""

import glob
import json
import os
import subprocess
import sys
import time

import openpyxl
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

cfg = json.load(open(sys.argv[1]))
base = cfg["base"]


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        raise SystemExit(1)


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=vi-VN"]:
    options.add_argument(a)
options.add_experimental_option(
    "prefs", {"download.default_directory": cfg["downloads"], "download.prompt_for_download": False})
driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"), options=options)
driver.set_window_size(1366, 768)
wait = WebDriverWait(driver, 20)

LUMINANCE = """
function lum(c) {
  var m = c.match(/[\\d.]+/g).map(Number);
  var ch = m.slice(0, 3).map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
}
function bg(el) {
  while (el) { var c = getComputedStyle(el).backgroundColor; if (c && !/rgba\\(.*, 0\\)$/.test(c) && c !== 'transparent') return c; el = el.parentElement; }
  return 'rgb(255, 255, 255)';
}
var worst = 99, where = '';
document.querySelectorAll('body p, body td, body th, body label, body li, body a, body h1, body h2, body button').forEach(function (el) {
  if (!el.offsetParent && el.tagName !== 'BODY') return;
  var a = lum(getComputedStyle(el).color), b = lum(bg(el));
  var r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (r < worst) { worst = r; where = el.tagName + ': ' + el.textContent.trim().slice(0, 40); }
});
return [worst, where];
"""

LABELS = """
var missing = [];
document.querySelectorAll('input, select, textarea').forEach(function (f) {
  if (f.type === 'hidden') return;
  if (!f.id || !document.querySelector('label[for="' + f.id + '"]')) missing.push(f.name || f.outerHTML.slice(0, 60));
});
return missing;
"""


def accessible(name):
    h1 = driver.find_elements(By.TAG_NAME, "h1")
    check(len(h1) == 1, f"{name}: one h1 ({len(h1)})")
    missing = driver.execute_script(LABELS)
    check(not missing, f"{name}: every field has a label {missing}")
    worst, where = driver.execute_script(LUMINANCE)
    check(worst >= 4.5, f"{name}: text contrast >= 4.5:1 (lowest {worst:.2f}, {where})")


def screenshots(name):
    for width, height in [(360, 780), (1366, 768)]:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
        time.sleep(0.3)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        check(overflow <= 1, f"{name} at {width} px: no sideways scrolling of the page ({overflow} px)")
        path = os.path.join(cfg["out"], f"{name}-{width}.png")
        driver.save_screenshot(path)
        print(f"wrote {path}", flush=True)
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def sign_in(name):
    driver.get(base + "/login")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(cfg["password"])
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(lambda d: d.current_url.rstrip("/") == base)


def sign_out():
    driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    wait.until(lambda d: "/login" in d.current_url)


def row_text(code_or_name):
    return driver.execute_script(
        "var needle = arguments[0];"
        "var r = [...document.querySelectorAll('#today-classes tr')].find(function (tr) { return tr.textContent.indexOf(needle) >= 0; });"
        "return r ? r.textContent : '';", code_or_name)


replay = None
try:
    # 1. The teacher's Today page, live while the gate replays its video in another process.
    driver.get(base + "/login")
    accessible("login")
    sign_in(cfg["teacher"])
    check("Hôm nay" in driver.find_element(By.TAG_NAME, "h1").text, "Today is the first page, in Vietnamese")
    name = cfg["student_enrolled_name"]
    check("Vắng" in row_text(name), f"before the replay {name} is absent ({row_text(name).strip()})")
    check(cfg["other_class_student_name"] not in driver.page_source, "the other class is not on her Today page")
    driver.execute_script("window.__notReloaded = true;")
    replay = subprocess.Popen(cfg["serve"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.time()
    WebDriverWait(driver, 240, poll_frequency=0.5).until(lambda d: "Có mặt" in row_text(name) or "Đi muộn" in row_text(name))
    check(driver.execute_script("return window.__notReloaded === true;"), "the arrival appeared without a reload")
    print(f"arrival shown {time.time() - started:.1f} s after the replay started: {row_text(name).strip()}", flush=True)
    replay.wait(timeout=600)
    check(replay.returncode == 0, f"the replay ended cleanly ({replay.returncode})")
    accessible("today")
    screenshots("today")

    # 2. The class page.
    driver.get(base + "/classes/" + cfg["class"])
    accessible("class")
    screenshots("class")

    # 3. A student without consent: record it, then enrol from photos and read the feedback.
    driver.get(base + "/students/" + cfg["student_new"])
    check(driver.find_elements(By.ID, "guardian"), "the consent form is shown")
    driver.find_element(By.ID, "guardian").send_keys("Trần Văn Bảo")
    driver.find_element(By.ID, "relation").send_keys("bố")
    driver.find_element(By.ID, "consent-date").send_keys("01/09/2026")
    driver.find_element(By.ID, "child").click()
    driver.find_element(By.CSS_SELECTOR, "form[action$='/consent'] button").click()
    wait.until(lambda d: "Đang có hiệu lực: Trần Văn Bảo" in d.page_source)
    check(True, "consent recorded through the form")
    driver.find_element(By.ID, "photos").send_keys("\n".join(cfg["photos"]))
    driver.find_element(By.CSS_SELECTOR, "form[action*='/enrol'] button").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".flash li"))
    feedback = [li.text for li in driver.find_elements(By.CSS_SELECTOR, ".flash li")]
    print("feedback: " + " | ".join(feedback), flush=True)
    check(len(feedback) == len(cfg["photos"]), "one feedback line per photo")
    check(any(f.startswith("Nhận:") for f in feedback), "a good photo is accepted")
    check(any(f.startswith("Không nhận:") for f in feedback), "a bad photo is rejected with its reason")
    accessible("student")
    screenshots("student")

    # 3b. A check-in the liveness check held back (a photo held up at the gate?): the teacher accepts it.
    driver.get(base + "/review")
    check(cfg["held_name"] in driver.page_source, "the held check-in is on the review page")
    check("giống ảnh hoặc màn hình" in driver.page_source, "with its reason")
    accessible("review")
    screenshots("review")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/accept'] button").click()
    wait.until(lambda d: "Đã ghi nhận điểm danh" in d.page_source)
    check("Không có lượt điểm danh nào cần xem lại" in driver.page_source, "accepted: nothing left to review")

    # 4. The day's XLSX, downloaded and read back.
    driver.get(base + "/exports")
    accessible("exports")
    driver.find_element(By.CSS_SELECTOR, "form[action='/exports/daily'] button").click()
    deadline = time.time() + 30
    files = []
    while time.time() < deadline:
        files = [f for f in glob.glob(os.path.join(cfg["downloads"], "*.xlsx"))]
        if files:
            break
        time.sleep(0.3)
    check(len(files) == 1, f"the XLSX was downloaded ({files})")
    book = openpyxl.load_workbook(files[0])
    cells = [str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    check(any(name in c for c in cells), f"the XLSX lists {name}")
    check(not any(cfg["other_class_student_name"] in c for c in cells), "and not the other class")

    # 5. The other class's teacher is refused this class, on the page and through the JSON endpoint.
    sign_out()
    sign_in(cfg["other_teacher"])
    driver.get(base + "/classes/" + cfg["class"])
    check("không có quyền" in driver.page_source, "the other teacher sees a refusal page")
    status = driver.execute_async_script(
        "var done = arguments[arguments.length - 1]; fetch('/api/classes/' + arguments[0] + '/today').then(function (r) { done(r.status); });",
        cfg["class"])
    check(status == 403, f"the JSON endpoint answers 403 ({status})")
    print("browser test passed", flush=True)
finally:
    if replay and replay.poll() is None:
        replay.kill()
    driver.quit()
