"""Screenshots of the partner portal's pages for docs/portal/ (run while `make demo` runs).

    .venv/bin/python hack/portal-screenshots.py [--partner acme-it] [--out docs/portal]

Logs in with the partner's GitOps ServiceAccount token (kubectl create token) in headless Chromium.
"""

from __future__ import annotations

import argparse
import base64
import shutil
import subprocess
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partner", default="acme-it")
    parser.add_argument("--customer", default="mustermann")
    parser.add_argument("--url", default="http://127.0.0.1:8088")
    parser.add_argument("--out", type=Path, default=Path("docs/portal"))
    parser.add_argument("--kubeconfig", default=".local/kubeconfig")
    args = parser.parse_args()
    token = subprocess.run(["kubectl", "--kubeconfig", args.kubeconfig, "create", "token", "tenantry-gitops",
                            "-n", f"partner-{args.partner}"], check=True, capture_output=True, text=True).stdout.strip()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1500,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        driver.get(args.url + "/login")
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        pages = {"customers": f"/p/{args.partner}/customers",
                 "customer": f"/p/{args.partner}/customers/{args.customer}",
                 "revenue": f"/p/{args.partner}/revenue", "pipeline": f"/p/{args.partner}/pipeline",
                 "onboard": f"/p/{args.partner}/onboard"}
        for name, path in pages.items():
            driver.get(args.url + path)
            # The whole page, not only the window: Chromium's DevTools capture beyond the viewport.
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                "captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": 1500, "height": height, "scale": 1}})
            (args.out / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
            print(f"wrote {args.out / (name + '.png')}")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
